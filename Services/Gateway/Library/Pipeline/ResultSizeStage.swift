import WardenMCP

/// Withholds a result larger than the policy lets the call return (the `maxResultBytes`
/// obligation): the agent gets an error saying so, never a truncated result it might take as whole.
struct ResultSizeStage: Sendable {
    func run(_ result: Result<JSONValue, JSONRPCError>, maximum: Int?, request: ClientRequest) -> Result<JSONValue, JSONRPCError> {
        guard let maximum, case .success(let value) = result else { return result }
        let size = value.serialized().count
        guard size > maximum else { return result }
        let name = (request.params?["name"] ?? request.params?["uri"])?.stringValue ?? request.method
        return .failure(
            JSONRPCError(
                code: JSONRPCError.Code.resultTooLarge,
                message: "The result of \(name) was \(size) bytes, more than the policy lets it return (\(maximum)); it was withheld"))
    }
}
