import RecurrentKitTestSupport
import XCTest

/// The documentation's code runs, not only compiles (DocSnippets.swift is generated from the articles by
/// Scripts/doc-snippets.py; CI checks it is current).
final class DocSnippetTests: XCTestCase {
    func testTrainingOnYourOwnSequencesRuns() throws {
        try DocSnippets.trainingOnYourOwnSequences()
    }
}
