// swift-tools-version: 6.0
import Foundation
import PackageDescription

// swift-docc-plugin only when building the documentation (Scripts/check-docs.sh sets RK_BUILD_DOCS=1): users and the
// test build neither fetch nor compile it.
let buildingDocs = ProcessInfo.processInfo.environment["RK_BUILD_DOCS"] != nil

let package = Package(
    name: "RecurrentKit",
    products: [
        .library(name: "RecurrentKit", targets: ["RecurrentKit"]),
        .library(name: "RecurrentKitText", targets: ["RecurrentKitText"]),
        .library(name: "RecurrentKitAnalysis", targets: ["RecurrentKitAnalysis"]),
        .library(name: "RecurrentKitMPI", targets: ["RecurrentKitMPI"]),
        .executable(name: "rnn", targets: ["RecurrentKitCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // RealModule: the elementary functions of Float and Double, shared with every package that uses swift-numerics.
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ] + (buildingDocs ? [
        // `swift package generate-documentation` (DocC).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ] : []),
    targets: [
        // MARK: - Public API
        // The core: tensors, parameters, cells, layers, losses, optimizers, safetensors.
        .target(
            name: "RecurrentKit",
            dependencies: ["_RecurrentKitKernels", .product(name: "RealModule", package: "swift-numerics")]
        ),
        // Text on the core's public API only: vocabulary, preparation, minibatches, language model, trainer,
        // generation, presets, checkpoints.
        .target(name: "RecurrentKitText", dependencies: ["RecurrentKit", "_RecurrentKitCorpora"]),
        // The d2l 8.7 analyses (gradient flow, the adding problem), benchmarks and SVG reports, on the public APIs.
        .target(name: "RecurrentKitAnalysis", dependencies: ["RecurrentKit", "RecurrentKitText"]),
        // Data-parallel training over MPI: a GradientReducer whose MPI library is loaded at run time, so neither this
        // module nor the `rnn` binary links one (Open MPI or MPICH is needed only when a job runs under mpirun).
        .target(name: "RecurrentKitMPI", dependencies: ["RecurrentKit", "_RecurrentKitMPI"]),
        .executableTarget(
            name: "RecurrentKitCLI",
            dependencies: [
                "RecurrentKit", "RecurrentKitText", "RecurrentKitAnalysis", "RecurrentKitMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Examples (public API only; built by `swift build`, run by .ci/run)
        .executableTarget(name: "SequenceRegression", dependencies: ["RecurrentKit"], path: "Examples/SequenceRegression"),
        .executableTarget(name: "Forecast", dependencies: ["RecurrentKit"], path: "Examples/Forecast"),
        .executableTarget(name: "ClassifyVariableLength", dependencies: ["RecurrentKit"], path: "Examples/ClassifyVariableLength"),
        .executableTarget(name: "CharacterModel", dependencies: ["RecurrentKitText"], path: "Examples/CharacterModel"),

        // MARK: - Implementation details
        // Hot loops (GEMM, gate non-linearities) in C, with AVX-512 / AVX2+FMA kernels chosen at run time.
        .target(name: "_RecurrentKitKernels"),
        // The Time Machine and tiny Shakespeare, compiled in so nothing is downloaded or located at run time.
        .target(name: "_RecurrentKitCorpora", exclude: ["corpora"]),
        // dlopen of libmpi and the calls of both MPI ABIs (Open MPI's pointer handles, MPICH's integer handles).
        .target(name: "_RecurrentKitMPI", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),

        // MARK: - Unit test bundles
        // Shared by the test targets: fixtures (in Tests/RecurrentKitTests/Fixtures), comparisons, the rnn binary.
        .target(name: "RecurrentKitTestSupport", dependencies: ["RecurrentKit"], path: "Tests/RecurrentKitTestSupport"),
        // One test target per library, and one for the rnn command (which runs the built executable).
        .testTarget(
            name: "RecurrentKitTests",
            dependencies: ["RecurrentKit", "RecurrentKitTestSupport", "_RecurrentKitKernels", .product(name: "RealModule", package: "swift-numerics")],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "RecurrentKitTextTests",
            dependencies: ["RecurrentKit", "RecurrentKitText", "RecurrentKitTestSupport", "_RecurrentKitKernels"]
        ),
        .testTarget(
            name: "RecurrentKitAnalysisTests",
            dependencies: ["RecurrentKit", "RecurrentKitText", "RecurrentKitAnalysis", "RecurrentKitTestSupport"]
        ),
        .testTarget(
            name: "RecurrentKitCLITests",
            dependencies: ["RecurrentKit", "RecurrentKitText", "RecurrentKitAnalysis", "RecurrentKitTestSupport", "_RecurrentKitKernels"]
        ),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .gnu2x
)
