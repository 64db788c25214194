/// The package's version (semantic versioning; the API changes of each version are listed in CHANGELOG.md).
public enum RecurrentKitVersion {
    /// "0.2.0".
    public static let string = "0.2.0"
}
