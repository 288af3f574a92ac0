import WardenContracts
import WardenMCP

/// Stage 5, the first permission layer: what each server exposes at all (its registry entry's
/// exposure lists). A name a server does not expose is "unknown", exactly like one it does not have.
struct ExposureStage: Sendable {
    func run(_ target: RouteTarget, requested request: ClientRequest) -> JSONRPCError? {
        func qualifiedName() -> String {
            let params = request.params
            return (params?["name"] ?? params?["uri"] ?? params?["ref"]?["name"] ?? params?["ref"]?["uri"])?.stringValue ?? "?"
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
