import RealModule
import RecurrentKit
import RecurrentKitTestSupport
import XCTest

/// A program importing both RecurrentKit and swift-numerics' RealModule sees one tanh, exp and log per type: the
/// scalar protocol refines `Real` instead of declaring its own (which made `Float.tanh(x)` ambiguous).
final class RealModuleTests: XCTestCase {
    func generic<T: RecurrentScalar>(_ x: T) -> T { T.tanh(x) + T.exp(x) - T.log(x + 2) }

    func testElementaryFunctionsAreRealModules() {
        XCTAssertEqual(Float.tanh(0.5), tanhf(0.5))
        XCTAssertEqual(Double.exp(1.25), exp(1.25))
        XCTAssertEqual(Double.log(3), log(3))
        XCTAssertEqual(generic(0.5 as Float), Float.tanh(0.5) + Float.exp(0.5) - Float.log(2.5))
        XCTAssertEqual(generic(0.5 as Double), Double.tanh(0.5) + Double.exp(0.5) - Double.log(2.5))
        XCTAssertEqual(perplexity(meanCrossEntropy: 0), 1)
    }
}
