import WardenMCP

/// Stage 6: a per-user server needs the caller's user's own credentials. Every secret its settings
/// name is resolved for that user now (through the resolver's cache): a user who has not stored one
/// gets an error saying which secret and the command that stores it, before any instance starts.
/// A shared value is never used instead. Servers with shared credentials pass straight through
/// (theirs are resolved when their process starts or their request goes out).
struct CredentialStage: Sendable {
    func run(_ target: RouteTarget) async -> JSONRPCError? {
        guard let credentials = target.userCredentials else { return nil }
        do {
            try await credentials.check()
            return nil
        } catch {
            return JSONRPCError(code: JSONRPCError.Code.credentialMissing, message: "server '\(target.server)': \(error)")
        }
    }
}
