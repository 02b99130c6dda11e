/// One rule violation found in a template.
///
/// `start` and `end` are offsets in Unicode scalars (code points) into the
/// template body, `end` exclusive; `excerpt` is the matched body text.
/// A `media_header` finding has `start == end == 0` and an excerpt such as
/// `"header: image"`.
public struct TemplateLintFinding: Sendable, Equatable, Codable {
    public let rule: TemplateLintRule
    public let language: String
    public let excerpt: String
    public let start: Int
    public let end: Int

    public init(rule: TemplateLintRule, language: String, excerpt: String, start: Int, end: Int) {
        self.rule = rule
        self.language = language
        self.excerpt = excerpt
        self.start = start
        self.end = end
    }
}
