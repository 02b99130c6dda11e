import Foundation
import Testing

@testable import ConsentCore

@Suite struct JSONBodyShapeTests {
    func violation(_ text: String, maxDepth: Int = JSONBodyShape.defaultMaxDepth) -> JSONBodyShape.Violation? {
        JSONBodyShape.violation(in: Array(text.utf8), maxDepth: maxDepth)
    }

    @Test(arguments: [
        #"{"subject":"+393331234567","channel":"sms","purposes":["marketing"]}"#,
        #"{"provenance":{"pageUrl":"https://shop.example/?q=null","method":"checkbox"},"n":1.5e3,"b":[true,false]}"#,
        #"{"text":"a \"null\" in a string, and \\ a backslash before the quote\\"}"#,
        #"{"nullable":"x","x":"null"}"#,
        "[]", "{}", "\"null\"", "12", "true",
        #"{ "spaced" : [ 1 , 2 ] , "k" : { } }"#,
    ])
    func acceptsBodiesWithoutNullWithinTheDepth(text: String) {
        #expect(violation(text) == nil)
    }

    @Test(arguments: [
        (#"null"#, ""),
        (#"{"text":null}"#, "text"),
        (#"{"a":"x","text": null }"#, "text"),
        (#"{"provenance":{"pageUrl":"https://a.example","userAgent":null}}"#, "provenance.userAgent"),
        (#"{"subjects":["+393331234567","+393331234568",null]}"#, "subjects[2]"),
        (#"{"subjects":[null]}"#, "subjects[0]"),
        (#"{"a":[[1],[2,null]]}"#, "a[1][1]"),
        (#"{"a\"b":null}"#, #"a\"b"#),
        (#"[{"x":1},{"y":null}]"#, "[1].y"),
        (#"{"":null}"#, ""),
    ])
    func findsNullAndNamesItsPath(text: String, path: String) {
        #expect(violation(text) == .null(path: path))
    }

    @Test func nestingIsCountedAcrossArraysAndObjects() {
        let atLimit = String(repeating: "[", count: 31) + "{}" + String(repeating: "]", count: 31)
        #expect(violation(atLimit) == nil)
        let overLimit = String(repeating: "[", count: 32) + "{}" + String(repeating: "]", count: 32)
        #expect(violation(overLimit) == .tooDeep(limit: 32))
        #expect(violation(#"{"a":{"b":{"c":1}}}"#, maxDepth: 2) == .tooDeep(limit: 2))
        #expect(violation(#"{"a":{"b":1},"c":{"d":1}}"#, maxDepth: 2) == nil)
    }

    @Test func bracketsInsideStringsDoNotNest() {
        let text = #"{"text":""# + String(repeating: "[{", count: 1000) + #""}"#
        #expect(violation(text, maxDepth: 2) == nil)
    }

    @Test func aDepthBombStopsAtTheLimitWithoutRecursion() {
        let bomb = Array(repeating: UInt8(ascii: "["), count: 1 << 20)
        #expect(JSONBodyShape.violation(in: bomb) == .tooDeep(limit: JSONBodyShape.defaultMaxDepth))
    }

    @Test func aBatchOfTenThousandSubjectsPasses() throws {
        let subjects = (0..<10_000).map { "+39333\(String(format: "%07d", $0))" }
        let body = try JSONSerialization.data(withJSONObject: ["channel": "sms", "purpose": "marketing", "subjects": subjects])
        #expect(JSONBodyShape.violation(in: body) == nil)
    }
}
