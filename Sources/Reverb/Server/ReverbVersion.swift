/// The version `reverb --version` prints after `swift-reverb ` (also the webhooks' `User-Agent`).
public enum ReverbVersion {
    public static let current = "0.1.0"
}
