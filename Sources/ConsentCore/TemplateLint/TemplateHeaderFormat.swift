/// Format of a template header component.
public enum TemplateHeaderFormat: String, Sendable, Codable, CaseIterable {
    case text, image, video, document, location

    /// Image and video headers are not allowed on utility templates.
    public var isMedia: Bool {
        self == .image || self == .video
    }
}
