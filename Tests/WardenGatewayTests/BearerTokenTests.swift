import Testing

@testable import WardenGateway

struct BearerTokenTests {
    @Test func readsTheTokenAfterTheSchemeInAnyCaseWithoutSurroundingSpaces() {
        #expect(BearerToken.from("Bearer eyJ.abc.def") == "eyJ.abc.def")
        #expect(BearerToken.from("bearer wdn_key") == "wdn_key")
        #expect(BearerToken.from("BEARER x") == "x")
        #expect(BearerToken.from("bEaReR  \t token \t ") == "token")
        #expect(BearerToken.from("Bearer tök€n") == "tök€n", "the rest is kept as it is")
        #expect(BearerToken.from("Bearer a b") == "a b", "inner spaces are the token's (and refused by whoever checks it)")
        #expect(BearerToken.from("Bearer   ") == "", "nothing after the scheme: an empty token, refused by whoever checks it")
    }

    @Test func refusesOtherSchemesAndShortHeaders() {
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearerx abc", "Bearer\tabc", "Bear er abc", "", "Bearér abc", "Bearer@abc"] {
            #expect(BearerToken.from(header) == nil, "\(header)")
        }
    }
}
