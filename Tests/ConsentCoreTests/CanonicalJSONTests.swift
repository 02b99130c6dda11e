import ConsentCore
import Foundation
import Testing

@Suite struct CanonicalJSONTests {
    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical spelling.
    static let numbers: [(UInt64, String)] = [
        (0x0000_0000_0000_0000, "0"), (0x8000_0000_0000_0000, "0"), (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"), (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
        (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"), (0x4340_0000_0000_0000, "9007199254740992"),
        (0xc340_0000_0000_0000, "-9007199254740992"), (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"), (0x44b5_2d02_c7e1_4af6, "1e+23"),
        (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"), (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
        (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"), (0x444b_1ae4_d6e2_ef50, "1e+21"),
        (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"), (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
        (0x41b3_de43_5555_5553, "333333333.3333332"), (0x41b3_de43_5555_5554, "333333333.33333325"),
        (0x41b3_de43_5555_5555, "333333333.3333333"), (0x41b3_de43_5555_5556, "333333333.3333334"),
        (0x41b3_de43_5555_5557, "333333333.33333343"), (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
        (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
    ]

    @Test func numbersAreSpelledAsAppendixB() throws {
        for (bits, expected) in Self.numbers {
            #expect(
                try CanonicalJSON.string(.number(Double(bitPattern: bits))) == expected, "\(String(bits, radix: 16))")
        }
        #expect(throws: CanonicalJSONError.nonFiniteNumber) { try CanonicalJSON.string(.number(.nan)) }
        #expect(throws: CanonicalJSONError.nonFiniteNumber) { try CanonicalJSON.string(.number(.infinity)) }
    }

    /// RFC 8785 section 3.2.2 and 3.2.3: the sample input and its canonical output.
    @Test func theRFCsSampleCanonicalises() throws {
        let input = #"""
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        let expected =
            #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try CanonicalJSON.string(JSONValue.parse(input)) == expected)
    }

    /// RFC 8785 section 3.2.3: members sort by UTF-16 code units, so U+1F600 (a surrogate pair) sorts before U+FB33.
    @Test func membersSortByUTF16CodeUnits() throws {
        let value = JSONValue.object([
            "\u{20ac}": .string("Euro Sign"), "\r": .string("Carriage Return"),
            "\u{fb33}": .string("Hebrew Letter Dalet With Dagesh"),
            "1": .string("One"), "\u{1f600}": .string("Emoji: Grinning Face"), "\u{0080}": .string("Control"),
            "\u{00f6}": .string("Latin Small Letter O With Diaeresis"),
        ])
        let text = try CanonicalJSON.string(value)
        let order = ["\\r", "1", "\u{0080}", "\u{00f6}", "\u{20ac}", "\u{1f600}", "\u{fb33}"]
        let positions = order.map { text.range(of: "\"\($0)\":")?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
    }

    @Test func booleansAndNumbersStayApart() throws {
        #expect(
            try JSONValue.parse("[true, 1, 0, false]") == .array([.bool(true), .number(1), .number(0), .bool(false)]))
        #expect(
            try CanonicalJSON.string(JSONValue.parse(#"{"b": [1.0, -0], "a": {"z": null}}"#))
                == #"{"a":{"z":null},"b":[1,0]}"#)
    }

    @Test func anEventsLeafIsItsCanonicalFields() throws {
        let record = AuditRecord(
            seq: 7, at: "2026-11-24T10:00:00.123Z", action: "consent.granted", actor: "key:1",
            subjectRef: UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
            data: ["purpose": .string("marketing"), "count": .number(2)])
        let text = String(decoding: try record.canonicalJSON(), as: UTF8.self)
        #expect(
            text
                == #"{"action":"consent.granted","actor":"key:1","at":"2026-11-24T10:00:00.123Z","data":{"count":2,"purpose":"marketing"},"seq":7,"subjectRef":"6f9619ff-8b86-d011-b42d-00c04fc964ff"}"#
        )
        #expect(try record.leafHash() == MerkleTree.leafHash(Array(text.utf8)))
        let anonymous = AuditRecord(
            seq: 0, at: "2026-11-24T10:00:00.000Z", action: "tenant.created", actor: "operator", subjectRef: nil,
            data: [:])
        #expect(
            try CanonicalJSON.string(anonymous.json)
                == #"{"action":"tenant.created","actor":"operator","at":"2026-11-24T10:00:00.000Z","data":{},"seq":0}"#)
    }
}
