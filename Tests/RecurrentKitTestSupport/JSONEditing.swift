// Editing the JSON a checkpoint keeps in its metadata, as the hostile-input and format tests do to make damaged or
// older files.
import Foundation
import XCTest

/// The JSON object `json` with `fields` set (a nil value removes the field), inside its nested object `nested` when
/// given (the training state's "options"); keys sorted.
public func editingJSON(_ json: String, _ fields: [String: Any?], in nested: String? = nil) throws -> String {
    var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    if let nested {
        var inner = try XCTUnwrap(object[nested] as? [String: Any])
        for (key, value) in fields { inner[key] = value }
        object[nested] = inner
    } else {
        for (key, value) in fields { object[key] = value }
    }
    return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}
