/// The version of this plugin API: the major changes when plugins must be
/// changed, the minor when the API only grew (2.1: the upgrade request's
/// headers, query parameters and cookies; 2.2: templates and claim
/// bindings; 2.3: `LogEndReportingSource`, `SourceRecord.traceParent`,
/// `ConfigSection.secret`). The API is not built with library
/// evolution, so any version change can move the layout of its types: a
/// plugin built against another version (major or minor) is refused at
/// load time with an error naming its file, and must be rebuilt (its source
/// needs changes only across majors).
///
/// `@inlinable` on purpose: a plugin library compiles these numbers into
/// itself, so the host compares what the plugin was built against with its
/// own (reading them at run time would read the host's copy of this library).
public enum PluginAPIVersion {
    @inlinable public static var major: Int { 2 }
    @inlinable public static var minor: Int { 3 }
}
