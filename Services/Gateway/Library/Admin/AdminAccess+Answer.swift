import Foundation
import Hummingbird
import NIOCore
import PostgresNIO
import WardenContracts
import WardenServiceKit

extension AdminAccess {
    /// Checks the caller may act on `org` (nil: platform only), runs `body` with the caller's name
    /// for the record, and renders its answer or error once.
    func answer(_ request: Request, org: String?, _ body: (String) async throws -> some Encodable) async -> Response {
        let principal: AdminPrincipal
        switch await require(request, org: org) {
        case .refused(let response): return response
        case .allowed(let allowed): principal = allowed
        }
        let actor =
            switch principal {
            case .platform: "platform-admin"
            case .org(_, let user): "user:\(user)"
            }
        do {
            let answer = try await body(actor)
            let data = (try? EnvelopeCoding.encoder().encode(answer)) ?? Data("{}".utf8)
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch let problem as AdminProblem {
            return problem.response
        } catch let error as ServiceError {
            return AdminProblem(error).response
        } catch is PSQLError {
            return AdminProblem(.unavailable, "the gateway's database cannot be reached; try again").response
        } catch {
            return AdminProblem(ServiceError(.internal, "the answer could not be read")).response
        }
    }

    static func decode<Body: Decodable>(_ request: Request, limit: Int = 16 << 10) async -> Body? {
        guard let buffer = try? await request.body.collect(upTo: limit) else { return nil }
        return try? EnvelopeCoding.decoder().decode(Body.self, from: Data(buffer.readableBytesView))
    }

}
