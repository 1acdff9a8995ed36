import Dispatch
import Foundation
import Logging
import ServiceLifecycle

/// SIGHUP reloads what can change without a restart: the listener's TLS
/// certificate chain and key (a renewed certificate), re-read from their
/// files. New connections get the new certificate, open ones keep theirs;
/// a chain that does not load leaves the previous one serving and says why.
/// Without TLS, SIGHUP is logged and otherwise ignored (its default action
/// would end the process).
struct HangupService: Service {
    let server: FanoutServer
    let certificateChain: String?
    let logger: Logger

    func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [server, certificateChain, logger] in
            guard let certificateChain else {
                logger.info("SIGHUP: nothing to reload (no listen.tls)")
                return
            }
            do {
                try server.reloadTLS()
                logger.info("SIGHUP: TLS certificate reloaded", metadata: ["certificate_chain": "\(certificateChain)"])
            } catch {
                logger.error("SIGHUP: TLS certificate not reloaded, the previous one still serves: \(error)")
            }
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}
