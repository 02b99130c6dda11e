import Crypto
import Testing

@testable import ConsentCore

@Suite struct APIKeyTokenTests {
    @Test func generatedTokensParseAndDiffer() throws {
        let first = APIKeyToken.generate()
        let second = APIKeyToken.generate()
        #expect(first != second)
        #expect(first.value.hasPrefix("clk_"))
        #expect(first.value.count == APIKeyToken.length)
        #expect(APIKeyToken(parsing: first.value) == first)
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        // The check value every CRC-32/ISO-HDLC implementation publishes for "123456789".
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func anyChangedCharacterFailsTheChecksum() throws {
        let token = APIKeyToken.generate().value
        var rejected = 0
        for offset in APIKeyToken.prefix.count..<token.count {
            var chars = Array(token)
            chars[offset] = chars[offset] == "a" ? "b" : "a"
            if APIKeyToken(parsing: String(chars)) == nil { rejected += 1 }
        }
        #expect(rejected == token.count - APIKeyToken.prefix.count)
    }

    @Test(arguments: [
        "", "clk_", "xyz_" + String(repeating: "a", count: 46), "clk_" + String(repeating: "a", count: 45),
        "clk_" + String(repeating: "-", count: 46), "Bearer clk_abc",
    ])
    func malformedTokensAreRejected(candidate: String) {
        #expect(APIKeyToken(parsing: candidate) == nil)
    }

    @Test func storedHashIsSHA256OfTheToken() {
        let token = APIKeyToken.generate()
        #expect(token.storedHash == Array(SHA256.hash(data: Array(token.value.utf8))))
        #expect(token.displayPrefix == String(token.value.prefix(10)))
    }
}

@Suite struct ScopeAndNameTests {
    @Test func scopesParseByContractName() throws {
        #expect(try Scope.parse(["consent:write", "dpo"]).get() == [.consentWrite, .dpo])
        #expect(throws: UnknownScope(name: "root")) { try Scope.parse(["admin", "root"]).get() }
    }

    @Test(arguments: ["demo", "acme-shop", "a", "shop_2", String(repeating: "x", count: 63)])
    func validTenantNames(name: String) {
        #expect(TenantName(name)?.value == name)
    }

    @Test(arguments: ["", "Demo", "-shop", "_x", "a b", "shop!", "café", String(repeating: "x", count: 64)])
    func invalidTenantNames(name: String) {
        #expect(TenantName(name) == nil)
    }
}
