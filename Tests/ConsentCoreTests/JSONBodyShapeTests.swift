import Foundation
import Testing

@testable import ConsentCore

@Suite struct JSONBodyShapeTests {
    func tooDeep(_ text: String, maxDepth: Int = JSONBodyShape.defaultMaxDepth) -> Bool {
        JSONBodyShape.nestsTooDeep(Array(text.utf8), maxDepth: maxDepth)
    }

    @Test(arguments: [
        #"{"subject":"+393331234567","channel":"sms","purposes":["marketing"]}"#,
        #"{"provenance":{"pageUrl":"https://shop.example/","method":"checkbox"},"n":1.5e3,"b":[true,false,null]}"#,
        #"{"text":"a \"quoted [ bracket\" and a backslash at the end\\"}"#,
        "[]", "{}", "\"[[[[\"", "12", "true", "",
    ])
    func ordinaryBodiesPass(text: String) {
        #expect(!tooDeep(text))
    }

    @Test func nestingIsCountedAcrossArraysAndObjects() {
        let atLimit = String(repeating: "[", count: 31) + "{}" + String(repeating: "]", count: 31)
        #expect(!tooDeep(atLimit))
        let overLimit = String(repeating: "[", count: 32) + "{}" + String(repeating: "]", count: 32)
        #expect(tooDeep(overLimit))
        #expect(tooDeep(#"{"a":{"b":{"c":1}}}"#, maxDepth: 2))
        #expect(!tooDeep(#"{"a":{"b":1},"c":{"d":1}}"#, maxDepth: 2), "siblings do not add up")
    }

    @Test func bracketsInsideStringsDoNotNest() {
        let text = #"{"text":""# + String(repeating: "[{", count: 1000) + #"\"[{"}"#
        #expect(!tooDeep(text, maxDepth: 2))
    }

    @Test func aDepthBombStopsAtTheLimitWithoutRecursion() {
        #expect(JSONBodyShape.nestsTooDeep(Array(repeating: UInt8(ascii: "["), count: 1 << 20)))
    }

    @Test func aBatchOfTenThousandSubjectsPasses() throws {
        let subjects = (0..<10_000).map { "+39333\(String(format: "%07d", $0))" }
        let body = try JSONSerialization.data(withJSONObject: [
            "channel": "sms", "purpose": "marketing", "subjects": subjects,
        ])
        #expect(!JSONBodyShape.nestsTooDeep(body))
    }
}
