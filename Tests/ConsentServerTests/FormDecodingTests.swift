import Hummingbird
import Testing

@testable import ConsentServer

/// Forms as browsers and the contract have them: the first of a repeated field counts, and names the forms do not
/// use (nested-looking ones included) are dropped before decoding, so they cannot make a well-formed form a 400.
@Suite struct FormDecodingTests {
    @Test func theFirstOfARepeatedFieldCounts() {
        #expect(Request.flatFirstFields("purpose=marketing&purpose=shipping_update&all=1") == "purpose=marketing&all=1")
    }

    @Test func aRepeatedFieldIsTheSameFieldWhateverItsEncoding() {
        #expect(Request.flatFirstFields("csrf=a&%63srf=b") == "csrf=a")
    }

    @Test func nestedLookingNamesAreDroppedAndPlainOnesKept() {
        #expect(Request.flatFirstFields("a%5Bb%5D=1&x[0]=2&key=clk_1&&") == "key=clk_1")
    }

    @Test func theFormStillDecodesWhatItNames() throws {
        struct Form: Decodable {
            let purpose: String?
            let all: String?
        }
        let form = try URLEncodedFormDecoder().decode(
            Form.self, from: Request.flatFirstFields("purpose=marketing&purpose=x&%C3%AEEI=1&%C3%AEEI=2&all=1"))
        #expect(form.purpose == "marketing")
        #expect(form.all == "1")
    }
}
