import ConsentCore
import Foundation
import Testing

/// The check's fast body reader never reads a body otherwise than JSONDecoder, and hands every body it is unsure
/// of back to it.
@Suite struct FlatJSONObjectTests {
    struct Members: Decodable, Equatable {
        let values: [String: String?]

        init(from decoder: any Decoder) throws {
            values = try decoder.singleValueContainer().decode([String: String?].self)
        }
    }

    @Test func readsFlatObjectsOfStringsAndNullsAsJSONDecoderDoes() throws {
        let bodies = [
            #"{"subject":"+393330000001","channel":"whatsapp","purpose":"marketing"}"#,
            " {\n\t\"a\" : \"b\" ,\r\n \"c\":null } \n",
            "{}",
            #"{"consistencyToken":null,"messageType":"marketing"}"#,
            #"{"ünïcode":"åçč😀","empty":""}"#,
            #"{"slash":"a/b","quote-free":"'single'"}"#,
        ]
        for body in bodies {
            let fast = try #require(FlatJSONObject.parse(Array(body.utf8)), "\(body)")
            let general = try JSONDecoder().decode(Members.self, from: Data(body.utf8)).values
            #expect(fast == general, "\(body)")
        }
    }

    @Test func handsBackEverythingElse() {
        let bodies: [[UInt8]] = [
            Array(#"{"a":"b\"c"}"#.utf8),  // an escape
            Array(#"{"a":"\u0041"}"#.utf8),
            Array(#"{"a":1}"#.utf8),  // other value types
            Array(#"{"a":true}"#.utf8),
            Array(#"{"a":["b"]}"#.utf8),
            Array(#"{"a":{"b":"c"}}"#.utf8),
            Array(#"{"a":"b","a":"c"}"#.utf8),  // duplicates, whichever value the first had
            Array(#"{"a":null,"a":"c"}"#.utf8),
            Array(#"{"a":"b",}"#.utf8),  // not JSON at all
            Array(#"{"a":"b"} x"#.utf8),
            Array(#"{"a":"b""#.utf8),
            Array(#"{"a" "b"}"#.utf8),
            Array(#"{"a":nul}"#.utf8),
            Array(#"{"a":"b"}}"#.utf8),
            Array(#"["a"]"#.utf8),
            Array(#""a""#.utf8),
            Array("{\"a\":\"line\nbreak\"}".utf8),  // a control character in a string
            [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D],  // invalid UTF-8
            [],
        ]
        for body in bodies {
            #expect(FlatJSONObject.parse(body) == nil, "\(String(decoding: body, as: UTF8.self))")
        }
    }
}
