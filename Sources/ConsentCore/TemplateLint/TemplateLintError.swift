import Foundation

/// Error thrown when a rulebook cannot be loaded. Each case names what is wrong.
public enum TemplateLintError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bundled rulebook resource is missing from the module bundle.
    case rulebookNotFound(String)
    /// The rulebook is not valid JSON or does not have the expected shape.
    case malformedRulebook(String)
    /// The rulebook has no (or an empty) version.
    case missingVersion
    /// A rule id is not a known `TemplateLintRule`.
    case unknownRule(String)
    /// A rule id appears more than once.
    case duplicateRule(String)
    /// A content rule is missing from the rulebook.
    case missingRule(String)
    /// A content rule has no patterns for a supported language.
    case missingLanguage(rule: String, language: String)
    /// A rule lists patterns for a language that is not supported.
    case unknownLanguage(rule: String, language: String)
    /// A pattern does not compile as a regular expression.
    case invalidPattern(rule: String, language: String, pattern: String, reason: String)

    public var description: String {
        switch self {
        case .rulebookNotFound(let name):
            return "template lint rulebook '\(name)' not found in module bundle"
        case .malformedRulebook(let reason):
            return "malformed template lint rulebook: \(reason)"
        case .missingVersion:
            return "template lint rulebook has no version"
        case .unknownRule(let id):
            return "template lint rulebook names unknown rule '\(id)'"
        case .duplicateRule(let id):
            return "template lint rulebook defines rule '\(id)' more than once"
        case .missingRule(let id):
            return "template lint rulebook has no entry for rule '\(id)'"
        case .missingLanguage(let rule, let language):
            return "template lint rule '\(rule)' has no patterns for language '\(language)'"
        case .unknownLanguage(let rule, let language):
            return "template lint rule '\(rule)' lists unsupported language '\(language)'"
        case .invalidPattern(let rule, let language, let pattern, let reason):
            return "template lint rule '\(rule)' [\(language)] has invalid pattern '\(pattern)': \(reason)"
        }
    }
}
