/// The version of this plugin API. A plugin built against another major
/// version is refused at load time with an error naming its file.
///
/// `@inlinable` on purpose: a plugin library compiles these numbers into
/// itself, so the host compares what the plugin was built against with its
/// own (reading them at run time would read the host's copy of this library).
public enum PluginAPIVersion {
    @inlinable public static var major: Int { 2 }
    @inlinable public static var minor: Int { 0 }
}
