/// The version of this plugin API. A plugin built against another major
/// version is refused at load time with an error naming its file.
public enum PluginAPIVersion {
    public static let major = 2
    public static let minor = 0
}
