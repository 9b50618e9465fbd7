// Weights that could not be placed on the GPU, kept for the check after loading.

import Synchronization

/// The weights that failed to reach the GPU, shared by the copies of one backend.
final class LoadFailures: Sendable {
    private let failures = Mutex<[String]>([])

    func record(_ failure: String) {
        failures.withLock { $0.append(failure) }
    }

    var first: String? { failures.withLock { $0.first } }
}
