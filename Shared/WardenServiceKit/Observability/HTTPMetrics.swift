import Metrics
import Synchronization

/// `warden_http_requests_total` and `warden_http_request_duration_seconds`, with their handles kept
/// by label values: one lookup a request instead of one per metric in the registry.
final class HTTPMetrics: Sendable {
    static let shared = HTTPMetrics()

    private let handles = Mutex<[[String]: (count: Counter, duration: Timer)]>([:])

    func record(method: String, route: String, status: Int, duration: Duration) {
        let labels = [method, route, String(status)]
        let pair = handles.withLock { known in
            if let pair = known[labels] { return pair }
            let made = (
                Counter(label: "warden_http_requests_total", dimensions: [("method", method), ("route", route), ("status", labels[2])]),
                Timer(label: "warden_http_request_duration_seconds", dimensions: [("method", method), ("route", route)])
            )
            known[labels] = made
            return made
        }
        pair.count.increment()
        pair.duration.record(duration: duration)
    }
}
