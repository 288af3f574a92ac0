/// The version every Warden binary reports (heartbeats, `/readyz`, `warden --version`).
public enum WardenVersion {
    public static let current = "0.1.0"
}
