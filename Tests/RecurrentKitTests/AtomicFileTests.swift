import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Atomic writes: the new file replaces the old in one step, and temporaries of killed writers are cleaned up.
final class AtomicFileTests: XCTestCase {
    func testWriteReplacesAndRemovesOnlyStaleTemporaries() throws {
        let folder = NSTemporaryDirectory() + "rk-atomic-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/model.safetensors"
        try writeFileAtomically(Array("old".utf8), to: path)
        // A temporary left by a writer that no longer exists, and one of a live process (our parent).
        let stale = folder + "/.model.safetensors.tmp-999999999", live = folder + "/.model.safetensors.tmp-\(getppid())"
        let other = folder + "/.other.bin.tmp-999999999", recent = folder + "/.model.safetensors.tmp-999999998"
        for file in [stale, live, other, recent] {
            _ = FileManager.default.createFile(atPath: file, contents: Data("partial".utf8))
        }
        let hourAgo = Date(timeIntervalSinceNow: -3600)
        for file in [stale, live, other] {
            try FileManager.default.setAttributes([.modificationDate: hourAgo], ofItemAtPath: file)
        }
        try writeFileAtomically(Array("new".utf8), to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "a dead writer's temporary is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "a live writer's temporary is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other), "another file's temporary is not ours to remove")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: recent),
            "a temporary written in the last 10 minutes may belong to a writer in another PID namespace")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/.model.safetensors.tmp-\(getpid())"))
    }
}
