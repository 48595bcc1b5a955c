// Version.swift — the one place the release number lives.

public enum GLMRuntimeVersion {
    public static let string = "0.1.0"
}
