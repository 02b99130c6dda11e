import Testing

@testable import ConsentCore

/// RFC 3492 section 7.1's sample strings, as code points and their Punycode (the RFC's mixed-case annotations
/// left out: the encoder writes lower-case digits, and basic code points keep the case they had).
@Suite struct PunycodeTests {
    static let samples: [(name: String, codePoints: [UInt32], punycode: String)] = [
        (
            "(A) Arabic (Egyptian)",
            [
                0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645, 0x0648, 0x0634, 0x0639,
                0x0631, 0x0628, 0x064A, 0x061F,
            ],
            "egbpdaj6bu4bxfgehfvwxn"
        ),
        (
            "(B) Chinese (simplified)", [0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587],
            "ihqwcrb4cv8a8dqg056pqjye"
        ),
        (
            "(C) Chinese (traditional)", [0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587],
            "ihqwctvzc91f659drss3x8bo0yb"
        ),
        (
            "(D) Czech",
            [
                0x0050, 0x0072, 0x006F, 0x010D, 0x0070, 0x0072, 0x006F, 0x0073, 0x0074, 0x011B, 0x006E, 0x0065, 0x006D,
                0x006C, 0x0075, 0x0076, 0x00ED, 0x010D, 0x0065, 0x0073, 0x006B, 0x0079,
            ],
            "Proprostnemluvesky-uyb24dma41a"
        ),
        (
            "(E) Hebrew",
            [
                0x05DC, 0x05DE, 0x05D4, 0x05D4, 0x05DD, 0x05E4, 0x05E9, 0x05D5, 0x05D8, 0x05DC, 0x05D0, 0x05DE, 0x05D3,
                0x05D1, 0x05E8, 0x05D9, 0x05DD, 0x05E2, 0x05D1, 0x05E8, 0x05D9, 0x05EA,
            ],
            "4dbcagdahymbxekheh6e0a7fei0b"
        ),
        (
            "(F) Hindi (Devanagari)",
            [
                0x092F, 0x0939, 0x0932, 0x094B, 0x0917, 0x0939, 0x093F, 0x0928, 0x094D, 0x0926, 0x0940, 0x0915, 0x094D,
                0x092F, 0x094B, 0x0902, 0x0928, 0x0939, 0x0940, 0x0902, 0x092C, 0x094B, 0x0932, 0x0938, 0x0915, 0x0924,
                0x0947, 0x0939, 0x0948, 0x0902,
            ],
            "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"
        ),
        (
            "(G) Japanese (kanji and hiragana)",
            [
                0x306A, 0x305C, 0x307F, 0x3093, 0x306A, 0x65E5, 0x672C, 0x8A9E, 0x3092, 0x8A71, 0x3057, 0x3066, 0x304F,
                0x308C, 0x306A, 0x3044, 0x306E, 0x304B,
            ],
            "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"
        ),
        (
            "(I) Russian (Cyrillic)",
            [
                0x043F, 0x043E, 0x0447, 0x0435, 0x043C, 0x0443, 0x0436, 0x0435, 0x043E, 0x043D, 0x0438, 0x043D, 0x0435,
                0x0433, 0x043E, 0x0432, 0x043E, 0x0440, 0x044F, 0x0442, 0x043F, 0x043E, 0x0440, 0x0443, 0x0441, 0x0441,
                0x043A, 0x0438,
            ],
            "b1abfaaepdrnnbgefbadotcwatmq2g4l"
        ),
        (
            "(J) Spanish",
            [
                0x0050, 0x006F, 0x0072, 0x0071, 0x0075, 0x00E9, 0x006E, 0x006F, 0x0070, 0x0075, 0x0065, 0x0064, 0x0065,
                0x006E, 0x0073, 0x0069, 0x006D, 0x0070, 0x006C, 0x0065, 0x006D, 0x0065, 0x006E, 0x0074, 0x0065, 0x0068,
                0x0061, 0x0062, 0x006C, 0x0061, 0x0072, 0x0065, 0x006E, 0x0045, 0x0073, 0x0070, 0x0061, 0x00F1, 0x006F,
                0x006C,
            ],
            "PorqunopuedensimplementehablarenEspaol-fmd56a"
        ),
        (
            "(L) 3<nen>B<gumi><kinpachi><sensei>", [0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F],
            "3B-ww4c5e180e575a65lsy2b"
        ),
    ]

    static func scalars(_ codePoints: [UInt32]) -> [Unicode.Scalar] { codePoints.compactMap(Unicode.Scalar.init) }

    @Test(arguments: samples.indices)
    func encodesTheRFCSamples(index: Int) {
        let sample = Self.samples[index]
        #expect(Punycode.encode(Self.scalars(sample.codePoints)) == sample.punycode, "\(sample.name)")
    }

    @Test(arguments: samples.indices)
    func decodesTheRFCSamples(index: Int) {
        let sample = Self.samples[index]
        let decoded = Punycode.decode(sample.punycode).map { $0.unicodeScalars.map(\.value) }
        #expect(decoded == sample.codePoints, "\(sample.name)")
    }

    /// Section 5: the digits decode in either case, the mixed-case annotations of the RFC's own listing included.
    @Test func decodesUpperCaseDigits() {
        let russian = Self.samples.first { $0.name.hasPrefix("(I)") }!
        #expect(
            Punycode.decode("b1abfaaepdrnnbgefbaDotcwatmq2g4l").map { $0.unicodeScalars.map(\.value) }
                == russian.codePoints)
        #expect(Punycode.decode("BCHER-KVA") == "BüCHER")
    }

    @Test func basicOnlyInputEndsWithTheDelimiter() {
        #expect(Punycode.encode("abc".unicodeScalars) == "abc-")
        #expect(Punycode.encode("".unicodeScalars) == "")
        #expect(Punycode.decode("abc-") == "abc")
    }

    @Test(arguments: [
        "bcher-k",  // the last number is cut short
        "bcher-kva9",
        "zz",
        "999999999999999999",  // overflows
        "bü-kva",  // a non-basic code point before the delimiter
        "bcher-kv!",  // not a digit
    ])
    func refusesInvalidPunycode(text: String) {
        #expect(Punycode.decode(text) == nil)
    }
}

@Suite struct EmailNormalisationTests {
    func email(_ raw: String) throws -> String { try SubjectIdentifier(raw, channel: .email).value }

    @Test func localPartsAreLowerCased() throws {
        #expect(try email("Anna@X.it") == "anna@x.it")
        #expect(try email("Anna@X.it") == email("anna@x.it"))
        #expect(try email("ANNA.ROSSI+Tag@Example.COM") == "anna.rossi+tag@example.com")
        #expect(try email("JOSÉ@x.it") == "jos\u{E9}@x.it")
    }

    /// "José" typed with a combining acute accent (NFD, as macOS file names and some keyboards produce it) and
    /// with the precomposed é are one person.
    @Test func localPartsAreNFC() throws {
        #expect(try email("Jose\u{301}@x.it") == email("Jos\u{E9}@x.it"))
        #expect(try email("Jose\u{301}@x.it") == "jos\u{E9}@x.it")
        #expect(try email("JOSE\u{301}@x.it") == "jos\u{E9}@x.it")
    }

    @Test(arguments: [
        "anna@bücher.de", "ANNA@BÜCHER.DE", "anna@xn--bcher-kva.de", "Anna@XN--BCHER-KVA.DE", "anna@bu\u{308}cher.de",
        "anna@BU\u{308}CHER.de", " anna@bücher.de\n", "anna@bücher\u{3002}de", "anna@\u{FF42}ücher.de",
    ])
    func internationalDomainsBecomeALabels(raw: String) throws {
        #expect(try email(raw) == "anna@xn--bcher-kva.de")
    }

    @Test(arguments: [
        ("info@münchen.de", "info@xn--mnchen-3ya.de"),
        ("a@zürich.ch", "a@xn--zrich-kva.ch"),
        ("a@例え.テスト", "a@xn--r8jz45g.xn--zckzah"),
        ("a@Παράδειγμα.ΔΟΚΙΜΉ", "a@xn--hxajbheg2az3al.xn--jxalpdlp"),
        ("a@b.co", "a@b.co"),
        ("a@xn--tda.de", "a@xn--tda.de"),  // ü
        ("x+tag@Sub.Domain.It", "x+tag@sub.domain.it"),
        ("a@xn--r8jz45g.xn--zckzah", "a@xn--r8jz45g.xn--zckzah"),
        ("a@r3--x.com", "a@r3--x.com"),  // an ASCII label keeps its hyphens, as before
    ])
    func domainsAreWrittenInASCII(raw: String, expected: String) throws {
        #expect(try email(raw) == expected)
    }

    /// The value is stored and read back through the same rules (`SubjectDirectory.identifier`): the second pass
    /// must change nothing, or a subject would move each time it is read.
    @Test(arguments: [
        "Anna@X.it", "Jose\u{301}@x.it", "ANNA@BÜCHER.DE", "a@例え.テスト", "İSTANBUL@x.com.tr", "STRASSE@straße.de",
        "a@Παράδειγμα.ΔΟΚΙΜΉ",
    ])
    func normalisingTwiceChangesNothing(raw: String) throws {
        let once = try email(raw)
        #expect(try email(once) == once)
    }

    @Test func tooLongLabelsAreRefused() throws {
        // 58 octets typed, 64 as an A-label: the DNS never sees it.
        let label = String(repeating: "a", count: 56) + "ü"
        #expect(label.utf8.count <= 63)
        #expect(throws: SubjectIdentifier.Invalid.self) { try email("a@\(label).de") }
        #expect(throws: SubjectIdentifier.Invalid.self) { try email("a@\(String(repeating: "a", count: 64)).de") }
        #expect(try email("a@\(String(repeating: "a", count: 55))ü.de").hasPrefix("a@xn--"))
    }

    @Test func tooLongDomainsAreRefused() throws {
        // 20 octets typed, 27 as an A-label: eleven of them fit in an address, but not in a domain name.
        let label = String(repeating: "a", count: 17) + "例"
        let domain = { (count: Int) in Array(repeating: label, count: count).joined(separator: ".") + ".de" }
        #expect(try email("a@\(domain(4))").hasSuffix(".de"))
        #expect("a@\(domain(11))".utf8.count <= 254)
        #expect(
            throws: SubjectIdentifier.Invalid.email(
                "the domain after @ must be at most 253 characters in its xn-- form")
        ) {
            try email("a@\(domain(11))")
        }
    }

    @Test(arguments: [
        "a@xn--.de",  // nothing after the prefix
        "a@xn--bcher-.de",  // decodes to plain ASCII
        "a@xn--bcher-k.de",  // cut short
        "a@xn--bcher-kva9.de",
        "a@xn--999999999999999999.de",  // overflows
        "a@xn--a.de",  // decodes to U+0080, a control character
        "a@xn--Bcher-kva.de-",
        "a@xn--bcher-kva-.de",
        "a@xn--ls8h.la",  // 💩: decodes, but not a letter
        "a@xn--wca.de",  // Ü: a U-label is lower case
    ])
    func invalidALabelsAreRefused(raw: String) {
        #expect(throws: SubjectIdentifier.Invalid.self) { try email(raw) }
    }

    @Test(arguments: [
        "a@bü_cher.de", "a@b☃.com", "a@\u{301}b.com", "a@b\u{200D}c.com", "a@bü--cher.de", "a@ab--ü.de", "a@b⒈com",
        "a@bü cher.de", "a@-bü.de", "a@bü-.de", "a@bü..de", "a@bü",
    ])
    func domainsWithOtherCharactersAreRefused(raw: String) {
        #expect(throws: SubjectIdentifier.Invalid.self) { try email(raw) }
    }

    @Test func refusalsSayWhy() {
        #expect(
            throws: SubjectIdentifier.Invalid.email("the domain after @ has an xn-- part that is not valid Punycode")
        ) {
            try email("a@xn--bcher-k.de")
        }
        #expect(
            throws: SubjectIdentifier.Invalid.email(
                "each part of the domain after @ must be at most 63 characters in its xn-- form")
        ) { try email("a@\(String(repeating: "a", count: 56))ü.de") }
        #expect(
            throws: SubjectIdentifier.Invalid.email(
                "the domain after @ may hold only letters, digits and hyphens between its dots")
        ) { try email("a@b☃.com") }
    }

    @Test func phoneNumbersAreUntouched() throws {
        #expect(try SubjectIdentifier("+39 333 123 4567", channel: .sms).value == "+393331234567")
    }
}
