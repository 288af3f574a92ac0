import ArgumentParser
import Foundation
import Hummingbird

/// An OTLP/HTTP receiver that takes every export and keeps nothing (the benchmark's trace backend):
/// prints its URL.
struct OTLPSink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "otlp-sink", abstract: "Accepts OTLP/HTTP exports and discards them.")

    func run() async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            for try await _ in request.body {}
            return Response(status: .ok, headers: [.contentType: "application/x-protobuf"])
        }
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("http://127.0.0.1:\(channel.localAddress?.port ?? 0)\n".utf8))
            })
        try await app.runService()
    }
}
