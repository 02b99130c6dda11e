import ConsentCore
import Foundation
import Testing

/// The import file reader (CSV and NDJSON) and the row checks, apart from any I/O.
@Suite struct ImportReaderTests {
    static func read(_ text: String, _ format: ImportFormat = .csv, pieces: Int? = nil) throws -> [ImportRecord] {
        var reader = ImportRecordReader(format: format)
        let bytes = Array(text.utf8)
        var records: [ImportRecord] = []
        let size = pieces.map { max(1, bytes.count / $0) } ?? max(1, bytes.count)
        var start = 0
        while start < bytes.count {
            records += try reader.read(bytes[start..<min(bytes.count, start + size)])
            start += size
        }
        return records + (try reader.finish())
    }

    static func malformed(_ text: String, _ format: ImportFormat = .csv) -> MalformedImport? {
        do {
            _ = try read(text, format)
            return nil
        } catch let error as MalformedImport {
            return error
        } catch {
            return nil
        }
    }

    static let sample = """
        \u{FEFF}Subject, purposes ,collectedAt,pageUrl,source\r
        +393331110001,marketing;shipping_update,2025-01-01T00:00:00Z,https://shop.example/,crm\r
        \r
        "+39 333 111 0002","marketing | shipping_update","2025-01-02T00:00:00Z","https://shop.example/a,b","a ""quoted"" tool"\r
        +393331110003,marketing,2025-01-03T00:00:00Z,,"two
        lines"
        """

    @Test func csvRowsAreReadWithTheirLinesWhateverTheyArriveIn() throws {
        let whole = try Self.read(Self.sample)
        #expect(whole.map(\.line) == [2, 4, 5])
        #expect(whole[0].subject == "+393331110001" && whole[0].purposes == ["marketing", "shipping_update"])
        #expect(whole[1].subject == "+39 333 111 0002" && whole[1].purposes == ["marketing", "shipping_update"])
        #expect(whole[1].pageUrl == "https://shop.example/a,b" && whole[1].source == "a \"quoted\" tool")
        #expect(whole[2].pageUrl == nil && whole[2].source == "two\nlines" && whole[2].method == nil)
        for pieces in [2, 3, 7, 50, Self.sample.utf8.count] {
            #expect(try Self.read(Self.sample, pieces: pieces) == whole, "in \(pieces) pieces")
        }
    }

    @Test(arguments: [
        ("", 1, "the file is empty"),
        ("subject,purposes\n", 1, "no 'collectedAt' column"),
        ("subject,purposes,collectedAt,phone\n", 1, "unknown column 'phone'"),
        ("subject,purposes,collectedAt,subject\n", 1, "names 'subject' twice"),
        ("subject,purposes,collectedAt\na,b\n", 2, "has 2 fields and the header names 3"),
        ("subject,purposes,collectedAt\na,b,c,d\n", 2, "has 4 fields"),
        ("subject,purposes,collectedAt\n\"a,b,c\n", 2, "not closed"),
        ("subject,purposes,collectedAt\n\"a\"x,b,c\n", 2, "followed by text"),
        ("subject,purposes,collectedAt\na\"b,c,d\n", 2, "a quote inside a field"),
    ])
    func aCSVFileThatCannotBeReadIsRefusedWithItsLine(text: String, line: Int, reason: String) {
        let error = Self.malformed(text)
        #expect(error?.line == line && error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func aHeaderCellOrFieldNameIsRepeatedOnlyWhenItLooksLikeAName() {
        // A file without its header row: the first row's identifier must not come back in the error.
        let headerless = Self.malformed("anna@shop.example,marketing,2025-01-01T00:00:00Z\n")
        #expect(headerless?.reason.contains("number 1") == true && headerless?.reason.contains("anna") == false)
        let phone = Self.malformed("+393331110001,marketing,2025-01-01T00:00:00Z\n")
        #expect(phone?.reason.contains("3331110001") == false, "\(String(describing: phone))")
        #expect(Self.malformed("subject,purposes,collectedAt,Opt In Date\n")?.reason.contains("'Opt In Date'") == true)
        let field = Self.malformed("{\"bob@shop.example\": \"x\"}\n", .ndjson)
        #expect(field?.reason.contains("bob") == false && field?.reason.contains("unknown field") == true)
    }

    @Test func invalidUTF8IsRefused() {
        var reader = ImportRecordReader(format: .csv)
        #expect(throws: MalformedImport.self) {
            _ = try reader.read(
                Array("subject,purposes,collectedAt\n".utf8) + [0xC3, 0x28, 0x2C, 0x61, 0x2C, 0x62, 0x0A])
        }
    }

    @Test func aRowLongerThanTheLimitIsRefusedRatherThanHeld() {
        let long = String(repeating: "a", count: ImportRecordReader.maxRowBytes + 1)
        #expect(Self.malformed("subject,purposes,collectedAt\n\(long),b,c\n")?.line == 2)
        #expect(Self.malformed("{\"subject\": \"\(long)\"}\n", .ndjson)?.line == 1)
    }

    @Test func ndjsonLinesAreReadWithArraysOrListsOfPurposes() throws {
        let text = """
            {"subject": "+393331110001", "purposes": ["marketing"], "collectedAt": "2025-01-01T00:00:00Z"}

            {"subject": "+393331110002", "purposes": "marketing,shipping_update", "collectedAt": "x", "pageUrl": null}
            """
        let records = try Self.read(text, .ndjson)
        #expect(records.map(\.line) == [1, 3])
        #expect(records[0].purposes == ["marketing"] && records[1].purposes == ["marketing", "shipping_update"])
        #expect(records[1].pageUrl == nil)
        #expect(try Self.read(text, .ndjson, pieces: 9) == records)
    }

    @Test(arguments: [
        ("[1, 2]\n", 1, "not a JSON object"),
        ("{\"subject\": \"a\"}\n{\"email\": \"a\"}\n", 2, "unknown field 'email'"),
        ("{\"subject\": 3}\n", 1, "'subject' must be a string"),
        ("{\"purposes\": [\"a\", 1]}\n", 1, "array of strings"),
        ("{\"subject\": \"a\"", 1, "not a JSON object"),
    ])
    func anNDJSONFileThatCannotBeReadIsRefusedWithItsLine(text: String, line: Int, reason: String) {
        let error = Self.malformed(text, .ndjson)
        #expect(error?.line == line && error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func theFormatComesFromTheMediaTypeAlone() {
        #expect(ImportFormat(contentType: "text/csv; charset=utf-8") == .csv)
        #expect(ImportFormat(contentType: "Application/X-NDJSON") == .ndjson)
        #expect(ImportFormat(contentType: "application/json") == nil)
    }
}

@Suite struct ImportRowValidatorTests {
    static let now = Date(timeIntervalSince1970: 1_780_000_000)
    static let validator = ImportRowValidator(
        channel: .whatsapp, noticePurposes: ["marketing", "shipping_update"], now: now)

    static func record(
        subject: String? = "+39 333 111 0001", purposes: [String]? = ["marketing"],
        collectedAt: String? = "2025-01-01T00:00:00Z", method: String? = nil, pageUrl: String? = nil,
        source: String? = nil, userAgent: String? = nil, ipAddress: String? = nil
    ) -> ImportRecord {
        ImportRecord(
            line: 7, subject: subject, purposes: purposes, collectedAt: collectedAt, method: method, pageUrl: pageUrl,
            source: source, userAgent: userAgent, ipAddress: ipAddress)
    }

    static func validating(_ record: ImportRecord) -> Result<ImportRow, ImportRejection> {
        var validator = validator
        return validator.validate(record)
    }

    static func reason(_ record: ImportRecord) -> String? {
        if case .failure(let rejection) = validating(record) {
            #expect(rejection.line == 7)
            return rejection.reason
        }
        return nil
    }

    @Test func aGoodRowIsNormalisedAndDefaultsToTheImportMethod() throws {
        let row = try Self.validating(Self.record(source: "crm")).get()
        #expect(row.subject == "+393331110001" && row.method == .import && row.line == 7)
        #expect(row.collectedAt == RFC3339.parse("2025-01-01T00:00:00Z"))
        #expect(row.provenance == Provenance(pageUrl: "", userAgent: nil, ipAddress: nil, source: "crm"))
        let full = try Self.validating(
            Self.record(
                method: "double_opt_in", pageUrl: " https://shop.example/x ", userAgent: "UA",
                ipAddress: "2001:DB8::1")
        ).get()
        #expect(full.method == .doubleOptIn && full.pageUrl == "https://shop.example/x")
        #expect(full.ipAddress == "2001:db8::1" && full.userAgent == "UA")
        // A user agent or address without a page is checked too, and no page is invented for it.
        #expect(try Self.validating(Self.record(ipAddress: "203.0.113.9")).get().pageUrl == nil)
    }

    @Test(arguments: [
        (record(subject: nil), "'subject' is empty"),
        (record(subject: "333 111 0001"), "E.164"),
        (record(purposes: nil), "'purposes' is empty"),
        (record(purposes: ["Marketing"]), "not a purpose key"),
        (record(purposes: ["marketing", "+39 333 111 0001"]), "item 2 is not a purpose key"),
        (record(purposes: ["marketing", "marketing"]), "names a purpose twice"),
        (record(purposes: ["marketing", "loyalty"]), "does not cover loyalty"),
        (record(purposes: Array(repeating: "marketing", count: 65)), "more than 64"),
        (record(collectedAt: nil), "'collectedAt' is empty"),
        (record(collectedAt: "01/02/2025"), "not an RFC 3339 time"),
        (record(collectedAt: "2030-01-01T00:00:00Z"), "in the future"),
        (record(collectedAt: "1999-12-31T23:59:59Z"), "before the year 2000"),
        (record(method: "fax"), "'method' is not one of"),
        (record(pageUrl: "ftp://shop.example/"), "'pageUrl'"),
        (record(ipAddress: "300.1.1.1"), "'ipAddress'"),
        (record(source: String(repeating: "s", count: 201)), "'source' must be at most 200"),
        (record(source: "crm\u{7}"), "printable"),
    ])
    func eachRuleRefusesWithItsReason(record: ImportRecord, reason: String) {
        let given = Self.reason(record)
        #expect(given?.contains(reason) == true, "\(String(describing: given))")
        #expect(given?.contains("333 111") != true, "a reason never repeats the identifier")
    }

    @Test func aPageCheckedOnceIsRememberedOnlyWhenItPassed() {
        var validator = Self.validator
        let good = Self.record(pageUrl: "https://shop.example/a")
        let bad = Self.record(pageUrl: "not a page")
        #expect((try? validator.validate(good).get()) != nil)
        #expect((try? validator.validate(bad).get()) == nil)
        #expect((try? validator.validate(bad).get()) == nil)
        #expect((try? validator.validate(good).get())?.pageUrl == "https://shop.example/a")
        let other = Self.record(pageUrl: "https://shop.example/a", ipAddress: "999.1.1.1")
        #expect((try? validator.validate(other).get()) == nil)
    }

    @Test func aTimeJustInsideTheClockSkewIsAccepted() {
        let skewed = RFC3339.format(Self.now.addingTimeInterval(ImportRowValidator.maxClockSkew - 1))
        #expect(Self.reason(Self.record(collectedAt: skewed)) == nil)
    }

    @Test func outcomesAreTheMostARowAchieved() {
        #expect(ImportOutcome.of([.suppressed, .granted]) == .granted)
        #expect(ImportOutcome.of([.superseded, .pending]) == .pending)
        #expect(ImportOutcome.of([.suppressed, .superseded]) == .superseded)
        #expect(ImportOutcome.of([.suppressed]) == .suppressed)
    }

    @Test func theRowKeyIgnoresPurposeOrderAndNothingElse() {
        let subject = UUID()
        let notice = UUID()
        let at = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let key = ImportRowKey.compute(
            subjectId: subject, noticeId: notice, method: .import, collectedAt: at, purposes: ["a", "b"])
        #expect(
            key
                == ImportRowKey.compute(
                    subjectId: subject, noticeId: notice, method: .import, collectedAt: at, purposes: ["b", "a"]))
        for other in [
            ImportRowKey.compute(
                subjectId: UUID(), noticeId: notice, method: .import, collectedAt: at, purposes: ["a", "b"]),
            ImportRowKey.compute(
                subjectId: subject, noticeId: UUID(), method: .import, collectedAt: at, purposes: ["a", "b"]),
            ImportRowKey.compute(
                subjectId: subject, noticeId: notice, method: .checkbox, collectedAt: at, purposes: ["a", "b"]),
            ImportRowKey.compute(
                subjectId: subject, noticeId: notice, method: .import, collectedAt: at.addingTimeInterval(0.000_001),
                purposes: ["a", "b"]),
            ImportRowKey.compute(
                subjectId: subject, noticeId: notice, method: .import, collectedAt: at, purposes: ["a"]),
        ] {
            #expect(other != key)
        }
    }

    @Test func aLeafIsTheCanonicalJSONOfItsFieldsAndNamesNoIdentifier() throws {
        let id = UUID(uuidString: "00000000-0000-4000-8000-000000000001")!
        let leaf = ImportLeaf(importId: id, line: 12, outcome: .invalid, subjectRef: nil, rowKey: nil)
        let text = try CanonicalJSON.string(leaf.json)
        #expect(text == #"{"importId":"00000000-0000-4000-8000-000000000001","line":12,"outcome":"invalid"}"#)
        #expect(leaf.hash() == MerkleTree.leafHash(Array(text.utf8)))
        #expect(ImportLeaf.root([leaf.hash()]) == leaf.hash())
        // The direct writer is the general serialiser's output, byte for byte, for every shape of leaf.
        for outcome in ImportOutcome.allCases {
            for subjectRef in [nil, UUID()] {
                for rowKey in [nil, (0..<32).map { _ in UInt8.random(in: 0...255) }] {
                    let leaf = ImportLeaf(
                        importId: UUID(), line: Int.random(in: 1...10_000_000), outcome: outcome,
                        subjectRef: subjectRef, rowKey: rowKey)
                    #expect(leaf.canonicalBytes == (try CanonicalJSON.serialize(leaf.json)))
                }
            }
        }
    }
}

@Suite struct LowercasedIdTests {
    @Test func idsAreWrittenAsFoundationWritesThemLowerCased() {
        for _ in 0..<1000 {
            let id = UUID()
            #expect(id.lowercased == id.uuidString.lowercased())
        }
        #expect(
            UUID(uuidString: "00000000-0000-0000-0000-000000000000")!.lowercased
                == "00000000-0000-0000-0000-000000000000")
        #expect(
            UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")!.lowercased
                == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }
}
