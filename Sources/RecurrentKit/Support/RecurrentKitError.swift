/// The one error type RecurrentKit throws: a message for people, naming the argument and the value.
///
/// Every check on user input (sizes, shapes, options, files, non-finite numbers) throws this
/// instead of trapping, so the command line can print one line and exit non-zero.
public struct RecurrentKitError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, as one line (no trailing period needed).
    public let message: String

    /// Creates an error with a one-line message.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }

    /// "invalid `name` `value`: `requirement`" for an invalid argument.
    public static func invalidArgument(_ name: String, _ value: Any, _ requirement: String) -> RecurrentKitError {
        RecurrentKitError("invalid \(name) \(value): \(requirement)")
    }

    /// Shape mismatch naming the tensor, the expected and the actual shape.
    public static func shapeMismatch(_ name: String, expected: [Int], got: [Int]) -> RecurrentKitError {
        RecurrentKitError("\(name) has shape \(got), expected \(expected)")
    }
}
