import ConsentCore
import Crypto
import Foundation
import Testing

@Suite struct FieldCipherTests {
    let key = SymmetricKey(size: .bits256)

    @Test func sealsAndOpensUnderTheSameContextOnly() throws {
        let sealed = FieldCipher.seal(Array("+393331234567".utf8), key: key, context: "s1:identifier")
        #expect(sealed.count == 12 + 13 + 16)
        #expect(!sealed.hexString.contains(Array("3331234567".utf8).hexString))
        #expect(try FieldCipher.open(sealed, key: key, context: "s1:identifier") == Array("+393331234567".utf8))
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.open(sealed, key: key, context: "s2:identifier")
        }
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.open(sealed, key: SymmetricKey(size: .bits256), context: "s1:identifier")
        }
        var tampered = sealed
        tampered[14] ^= 1
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.open(tampered, key: key, context: "s1:identifier")
        }
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.open([1, 2, 3], key: key, context: "s1:identifier")
        }
    }

    @Test func twoSealsOfTheSameTextDiffer() {
        let a = FieldCipher.seal(Array("same".utf8), key: key, context: "c")
        let b = FieldCipher.seal(Array("same".utf8), key: key, context: "c")
        #expect(a != b, "a fresh nonce each time")
    }

    @Test func wrappedKeysOpenOnlyUnderTheirMasterAndContext() throws {
        let master = SymmetricKey(size: .bits256)
        let (dataKey, wrapped) = FieldCipher.newWrappedKey(master: master, context: "subject-key:1")
        let unwrapped = try FieldCipher.unwrapKey(wrapped, master: master, context: "subject-key:1")
        #expect(unwrapped == dataKey)
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.unwrapKey(wrapped, master: master, context: "subject-key:2")
        }
        #expect(throws: FieldCipher.OpenFailed.self) {
            try FieldCipher.unwrapKey(wrapped, master: SymmetricKey(size: .bits256), context: "subject-key:1")
        }
    }
}

@Suite struct BlindIndexTests {
    @Test func deterministicPerKeyAndChannel() throws {
        let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
        let phone = try SubjectIdentifier("+39 333 123 4567", channel: .whatsapp)
        let samePhone = try SubjectIdentifier("0039 333-1234567", channel: .whatsapp)
        let onSMS = try SubjectIdentifier("+393331234567", channel: .sms)
        #expect(BlindIndex.compute(phone, key: key) == BlindIndex.compute(samePhone, key: key))
        #expect(BlindIndex.compute(phone, key: key) != BlindIndex.compute(onSMS, key: key))
        #expect(BlindIndex.compute(phone, key: key) != BlindIndex.compute(phone, key: SymmetricKey(size: .bits256)))
        // HMAC-SHA256(key, "whatsapp" 0x00 "+393331234567"), computed independently with Python's hmac module.
        #expect(BlindIndex.compute(phone, key: key).hexString == BlindIndexTests.expected)
    }

    static let expected = "8ba255d3af055afb64bf35c6aa95d0fcd516e8d8a55de7cd7f3c9c938724be1a"

    /// The batch form copies one keyed state; each copy must start from the key alone.
    @Test func theBatchFormAgreesWithOneAtATime() throws {
        let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
        let subjects =
            try ["+393331234567", "+393331234568", "+441632960001", "+393331234567"].map {
                try SubjectIdentifier($0, channel: .whatsapp)
            } + [try SubjectIdentifier("a@example.org", channel: .email)]
        let batch = BlindIndex.compute(subjects, key: key)
        #expect(batch == subjects.map { BlindIndex.compute($0, key: key) })
        #expect(batch[0].hexString == Self.expected && batch[0] == batch[3] && batch[0] != batch[1])
    }
}

@Suite struct ConsistencyTokenTests {
    @Test func roundTripsAndOrders() {
        let token = ConsistencyToken(position: 42)
        #expect(token.description == "ct1_42")
        #expect(ConsistencyToken(parsing: "ct1_42") == token)
        #expect(ConsistencyToken(parsing: "ct1_43")! > token)
    }

    @Test(arguments: ["", "ct1_", "ct1_0", "ct1_-5", "ct1_+5", "ct2_5", "42", "ct1_99999999999999999999", "ct1_4 2"])
    func refusesWhatNoWriteReturned(text: String) {
        #expect(ConsistencyToken(parsing: text) == nil)
    }
}

@Suite struct ProvenanceTests {
    @Test func acceptsWhatBrowsersSend() throws {
        let provenance = try Provenance.validated(
            pageUrl: " https://shop.example/checkout?step=3 ", userAgent: "Mozilla/5.0", ipAddress: "2001:DB8::1")
        #expect(provenance.pageUrl == "https://shop.example/checkout?step=3")
        #expect(provenance.ipAddress == "2001:db8::1")
        #expect(
            try Provenance.validated(pageUrl: "http://localhost:8080/demo", userAgent: nil, ipAddress: "203.0.113.7")
                .ipAddress == "203.0.113.7")
    }

    @Test(
        arguments: [
            ("javascript:alert(1)", nil, nil), ("/checkout", nil, nil), ("ftp://shop.example/", nil, nil),
            ("https://", nil, nil), ("https://shop.example/", nil, "999.1.1.1"),
            ("https://shop.example/", nil, "localhost"),
            ("https://shop.example/", String(repeating: "u", count: 1025), nil),
            ("https://shop.example/" + String(repeating: "p", count: 2048), nil, nil),
        ] as [(String, String?, String?)])
    func refusesTheRest(pageUrl: String, userAgent: String?, ipAddress: String?) {
        #expect(throws: Provenance.Invalid.self) {
            try Provenance.validated(pageUrl: pageUrl, userAgent: userAgent, ipAddress: ipAddress)
        }
    }
}

@Suite struct CatalogueRulesTests {
    @Test func builtInsAreTheContractsTwelve() {
        #expect(Purpose.builtIns.count == 12)
        #expect(Purpose.builtIns.filter { $0.category == .utility }.count == 10)
        #expect(Purpose.builtIns.first { $0.key == "marketing" }?.category == .marketing)
        #expect(Purpose.builtIns.first { $0.key == "authentication" }?.category == .authentication)
        #expect(Purpose.builtIns.allSatisfy { Purpose.isValidKey($0.key) })
    }

    @Test(arguments: [
        ("loyalty_points", true), ("a1", true), ("x", false), ("Marketing", false), ("1abc", false),
        ("with-dash", false), ("ümlaut", false), (String(repeating: "a", count: 64), false),
    ])
    func purposeKeys(key: String, valid: Bool) {
        #expect(Purpose.isValidKey(key) == valid)
    }

    @Test func noticeHashIsSHA256OfTheUTF8Text() {
        #expect(NoticeText.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(NoticeText.sha256Hex("Sì") != NoticeText.sha256Hex("Si"))
    }

    @Test(arguments: [
        ("it", true), ("en-GB", true), ("pt-BR", true), ("zh-Hant-TW", true), ("e", false),
        ("english", false), ("en_GB", false), ("en-", false), ("", false), ("fr-ç", false),
    ])
    func languageTags(tag: String, valid: Bool) {
        #expect(NoticeText.isValidLanguage(tag) == valid)
    }
}
