/// The package's version (semantic versioning; the API changes of each version are listed in CHANGELOG.md).
public enum RecurrentKitVersion {
    /// "0.3.0-dev": the unreleased 0.3.0 of CHANGELOG.md (a pre-release in semantic versioning's terms), so a
    /// checkpoint or an ONNX file written by this code does not claim to come from the released 0.2.0.
    public static let string = "0.3.0-dev"
}
