import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Issue #30, item 2: an output never replaces what is not a regular file. `writeFileAtomically` (and with it every
/// file the library and `rnn` write) and each command with an output path (`export`, `import`, `plot --output`)
/// refuse, with one line, a path that exists and is a FIFO, a symbolic link (to a regular file, dangling, or a loop),
/// a folder, a socket or (as root) a device node, and leave it exactly as it was; a regular file is replaced, a
/// missing one created. The refusal never opens the path, so a FIFO without a reader cannot block it.
final class OutputPathTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder =
            FileManager.default.temporaryDirectory.appendingPathComponent("rk-out-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    // MARK: - Special files

    /// What is at a path, without following it: enough to tell that nothing there changed.
    struct Snapshot: Equatable {
        var type: mode_t, inode: UInt64, device: UInt64, linkTarget: String?, contents: [UInt8]?

        init?(_ path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            type = info.st_mode & S_IFMT
            inode = UInt64(info.st_ino)
            device = UInt64(info.st_rdev)
            var buffer = [CChar](repeating: 0, count: 4097)
            let n = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, 4096) }
            linkTarget = n >= 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
            contents =
                type == S_IFDIR
                ? (try? FileManager.default.contentsOfDirectory(atPath: path).sorted()).map {
                    Array($0.joined(separator: "/").utf8)
                } : nil
        }
    }

    /// An existing non-regular output, what the refusal must call it, and what it was before.
    struct Special {
        let path: String, what: String, before: Snapshot
    }

    /// Creates in `dir` every kind of non-regular output this process can make, plus `victim.txt` ("precious"), the
    /// target of one link. Device nodes only as root (a private twin of /dev/null, major 1 minor 3, and a block node
    /// that is never opened); they are skipped where the container forbids mknod.
    func makeSpecials(in dir: String) throws -> [Special] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: dir + "/victim.txt"))
        var made: [(String, String)] = []
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o644), 0, "mkfifo")
        made.append((dir + "/fifo", "a FIFO"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link-to-file", withDestinationPath: "victim.txt")
        made.append((dir + "/link-to-file", "a symbolic link (to victim.txt)"))
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/dangling", withDestinationPath: dir + "/nowhere/missing")
        made.append((dir + "/dangling", "a symbolic link"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/loop-a", withDestinationPath: "loop-b")
        try FileManager.default.createSymbolicLink(atPath: dir + "/loop-b", withDestinationPath: "loop-a")
        made.append((dir + "/loop-a", "a symbolic link (to loop-b)"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/stdout", withDestinationPath: "/proc/self/fd/1")
        made.append((dir + "/stdout", "a symbolic link (to /proc/self/fd/1)"))
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: false)
        made.append((dir + "/folder", "a folder"))
        if makeSocket(dir + "/socket") { made.append((dir + "/socket", "a socket")) }
        if getuid() == 0 {
            if mknod(dir + "/null", S_IFCHR | 0o666, deviceNumber(1, 3)) == 0 {
                made.append((dir + "/null", "a character device"))
            }
            if mknod(dir + "/block", S_IFBLK | 0o600, deviceNumber(7, 250)) == 0 {
                made.append((dir + "/block", "a block device"))
            }
        }
        return made.map { Special(path: $0.0, what: $0.1, before: Snapshot($0.0)!) }
    }

    func deviceNumber(_ major: UInt32, _ minor: UInt32) -> dev_t {
        #if canImport(Darwin)
        return dev_t(Int32(bitPattern: major << 24 | minor))
        #else
        return dev_t(major << 8 | minor)  // Linux, small numbers: what makedev(1, 3) gives
        #endif
    }

    /// A Unix-domain socket bound at `path` (closed again: the file stays); false where it cannot be made.
    func makeSocket(_ path: String) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        } == 0
    }

    /// Checks that `special` is exactly as it was, the link's target untouched and no temporary left beside it.
    func assertUnchanged(_ special: Special, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(
            Snapshot(special.path), special.before, "\(context): \(special.path) changed", file: file, line: line)
        let dir = parentFolder(of: special.path)
        XCTAssertEqual(
            try String(contentsOfFile: dir + "/victim.txt", encoding: .utf8), "precious",
            "\(context): written through a link", file: file, line: line)
        let name = special.path.split(separator: "/").last.map(String.init) ?? ""
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            $0.hasPrefix(".\(name).tmp-")
        }
        XCTAssertEqual(leftovers, [], "\(context): temporaries left", file: file, line: line)
    }

    func assertRefusal(
        _ message: String, _ special: Special, _ context: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertTrue(
            message.contains(special.path) && message.contains("is \(special.what)")
                && message.contains("not a regular file"),
            "\(context): '\(message)' should name \(special.path) as \(special.what)", file: file, line: line)
        XCTAssertFalse(
            message.trimmingCharacters(in: .newlines).contains("\n"), "\(context): one line expected: \(message)",
            file: file, line: line)
    }

    // MARK: - Library

    final class Outcome: @unchecked Sendable { var message: String? }

    /// `writeFileAtomically` on another thread, waited for at most `seconds`: nil when it blocked, "" when it wrote,
    /// else the error.
    func boundedWrite(_ bytes: [UInt8], to path: String, seconds: Double = 10) -> String? {
        let done = DispatchSemaphore(value: 0), outcome = Outcome()
        Thread {
            do { try writeFileAtomically(bytes, to: path); outcome.message = "" } catch { outcome.message = "\(error)" }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return outcome.message
    }

    func testWriteFileAtomicallyRefusesEverythingButARegularFile() throws {
        let specials = try makeSpecials(in: folder + "/lib")
        XCTAssertGreaterThanOrEqual(specials.count, 6)
        for special in specials {
            let message = boundedWrite(Array("new".utf8), to: special.path)
            guard let message else {
                XCTFail("writeFileAtomically blocks on \(special.path) (\(special.what))"); continue
            }
            assertRefusal(message, special, "writeFileAtomically")
            assertUnchanged(special, "writeFileAtomically")
            // The early check of the CLI commands says the same, before any work.
            XCTAssertThrowsError(try checkWritableLocation(special.path)) {
                assertRefusal("\($0)", special, "checkWritableLocation")
            }
            assertUnchanged(special, "checkWritableLocation")
        }
        // Every writer of the library goes through it: a checkpoint onto a FIFO is refused the same way.
        let fifo = try XCTUnwrap(specials.first { $0.what == "a FIFO" })
        XCTAssertThrowsError(try SafetensorsFile().write(toFile: fifo.path)) {
            assertRefusal("\($0)", fifo, "SafetensorsFile.write")
        }
        assertUnchanged(fifo, "SafetensorsFile.write")
        // A regular file is replaced (a new inode, atomically), a missing one created.
        let regular = folder + "/lib/regular.txt"
        try Data("old".utf8).write(to: URL(fileURLWithPath: regular))
        let oldInode = Snapshot(regular)!.inode
        XCTAssertEqual(boundedWrite(Array("new".utf8), to: regular), "")
        XCTAssertEqual(try String(contentsOfFile: regular, encoding: .utf8), "new")
        XCTAssertNotEqual(Snapshot(regular)!.inode, oldInode, "replaced by rename, not rewritten in place")
        XCTAssertEqual(boundedWrite(Array("fresh".utf8), to: folder + "/lib/missing.txt"), "")
        XCTAssertEqual(try String(contentsOfFile: folder + "/lib/missing.txt", encoding: .utf8), "fresh")
        XCTAssertNoThrow(try checkWritableLocation(regular))
    }

    /// What the comment at the rename in `writeFileAtomically` relies on: a symbolic link put at the destination after
    /// the last check is replaced by rename(2) itself; its target is neither followed nor changed.
    func testRenameReplacesALinkNotItsTarget() throws {
        let victim = folder + "/victim.txt", link = folder + "/out.txt", temporary = folder + "/.out.txt.tmp"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        try Data("new".utf8).write(to: URL(fileURLWithPath: temporary))
        XCTAssertEqual(rename(temporary, link), 0)
        XCTAssertEqual(Snapshot(link)?.type, S_IFREG)
        XCTAssertEqual(try String(contentsOfFile: link, encoding: .utf8), "new")
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
    }

    // MARK: - Commands

    /// The `rnn` executable next to the test bundle (swift test builds every product).
    var binary: URL { rnnBinary() }

    /// Runs `rnn`, killed after `seconds` (a command that blocks on a FIFO fails instead of hanging the tests).
    func run(
        _ arguments: [String], seconds: Double = 60
    ) throws -> (status: Int32, out: String, err: String, timedOut: Bool) {
        try runRNN(arguments, seconds: seconds)
    }

    /// `command(output)` refuses every special output with one line and leaves it as it was, replaces a regular
    /// file, creates a missing one; `isValid` checks what was written.
    func checkCommand(_ name: String, _ command: (String) -> [String], isValid: (String) throws -> Bool) throws {
        for special in try makeSpecials(in: folder + "/" + name) {
            let context = "rnn \(name) → \(special.what)"
            let result = try run(command(special.path), seconds: 30)
            XCTAssertFalse(result.timedOut, "\(context) blocks")
            XCTAssertNotEqual(result.status, 0, "\(context) should fail")
            XCTAssertEqual(
                result.err.split(separator: "\n").count, 1, "\(context): one line expected, got: \(result.err)")
            XCTAssertTrue(result.err.hasPrefix("rnn: error: "), "\(context): \(result.err)")
            assertRefusal(result.err, special, context)
            assertUnchanged(special, context)
        }
        let regular = folder + "/\(name)/regular.out"
        try Data("old".utf8).write(to: URL(fileURLWithPath: regular))
        var result = try run(command(regular))
        XCTAssertEqual(result.status, 0, "rnn \(name) onto a regular file: \(result.err)")
        XCTAssertEqual(Snapshot(regular)?.type, S_IFREG)
        XCTAssertTrue(try isValid(regular), "rnn \(name) did not replace \(regular)")
        let missing = folder + "/\(name)/new.out"
        result = try run(command(missing))
        XCTAssertEqual(result.status, 0, "rnn \(name) onto a new file: \(result.err)")
        XCTAssertTrue(try isValid(missing), "rnn \(name) did not create \(missing)")
    }

    static let checkpoint = Fixture.directory.appendingPathComponent("interchange/lstm_l2_emb8.safetensors").path

    /// ONNX files start with field 1 (ir_version, varint): byte 0x08.
    func isONNX(_ path: String) throws -> Bool { try Data(contentsOf: URL(fileURLWithPath: path)).first == 0x08 }

    func isCheckpoint(_ path: String) throws -> Bool {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // safetensors: u64 header size, then JSON
        return bytes.count > 16 && bytes.dropFirst(8).first == UInt8(ascii: "{")
    }

    func testExportRefusesSpecialOutputs() throws {
        try checkCommand("export", { ["export", Self.checkpoint, $0] }, isValid: isONNX)
    }

    func testImportRefusesSpecialOutputs() throws {
        let onnx = folder + "/model.onnx"
        let exported = try run(["export", Self.checkpoint, onnx])
        XCTAssertEqual(exported.status, 0, exported.err)
        try checkCommand("import", { ["import", onnx, $0] }, isValid: isCheckpoint)
    }

    func testPlotRefusesSpecialOutputs() throws {
        let metrics = folder + "/metrics.jsonl"
        try Data(
            """
            {"epoch":1,"step":10,"train_perplexity":20.5,"validation_perplexity":21.0,"gradient_norm":1.5,"tokens_per_second":1000,"elapsed_seconds":1.0}
            {"epoch":2,"step":20,"train_perplexity":12.25,"validation_perplexity":13.0,"gradient_norm":1.2,"tokens_per_second":1000,"elapsed_seconds":2.0}

            """.utf8
        ).write(to: URL(fileURLWithPath: metrics))
        try checkCommand(
            "plot", { ["plot", metrics, "--output", $0] },
            isValid: { try String(contentsOfFile: $0, encoding: .utf8).contains("<svg") })
    }
}
