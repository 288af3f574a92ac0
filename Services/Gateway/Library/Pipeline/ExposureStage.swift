import WardenContracts
import WardenMCP

/// The first permission layer: what each server exposes at all (its registry entry's exposure
/// lists), of what it listed. A name a server does not expose is "unknown", exactly like one it
/// does not have.
struct ExposureStage: Sendable {
    func run(_ target: RouteTarget, requested request: ClientRequest) -> JSONRPCError? {
        func qualifiedName() -> String {
            let params = request.params
            return (params?["name"] ?? params?["uri"] ?? params?["ref"]?["name"] ?? params?["ref"]?["uri"])?.stringValue ?? "?"
        }
        // Only tools the server listed are called: the policy decided on this exact name, and a
        // server that took other spellings of it must not be reached by them.
        if case .tool(let name) = target.item, let known = target.pool.knownToolNames, !known.contains(name) {
            return .invalidParams("unknown tool: \(qualifiedName())")
        }
        guard let exposure = target.exposure else { return nil }
        switch target.item {
        case .tool(let name):
            return exposure.allows(.tool, name) ? nil : .invalidParams("unknown tool: \(qualifiedName())")
        case .prompt(let name):
            return exposure.allows(.prompt, name) ? nil : .invalidParams("unknown prompt: \(qualifiedName())")
        case .resource(let uri):
            return exposure.allowsResource(uri: uri) ? nil : .resourceNotFound(qualifiedName())
        }
    }
}
