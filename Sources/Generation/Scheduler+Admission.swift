// Admitting waiting requests: each image's prefix is started once (its visual tokens from the embedding cache or one
// vision pass for every image starting in the step), and a request joins the running ones as soon as its prefix is
// ready and its memory fits, taking a copy of the prefix's keys and values.

import Foundation
import Imaging
import Models

extension Scheduler {
    /// Admits waiting requests in order while rows and memory allow, and starts the prefixes they need. When nothing
    /// runs and nothing can start, drops prefixes held for later requests until the first request can (its own
    /// too, to compute it again where it leaves room).
    func admit(_ completions: inout [Completion]) {
        while true {
            admitInOrder()
            guard running.isEmpty, let head = waiting.first, !prefixes.values.contains(where: { !$0.isReady }) else {
                return
            }
            let key = entries[head]!.plan.prefixKey
            if let victim = prefixes.values.filter({ $0.key != key }).max(by: { $0.order < $1.order }) {
                dropPrefix(victim.key)
            } else if let own = prefixes[key], own.region.start > 0 {
                // Its own prefix, computed while others ran, splits the free memory: computed again first thing
                // on the empty arena, it leaves one free run after it, which submission checked is enough.
                dropPrefix(own.key)
            } else {
                // It did not fit beside its own prefix on an otherwise empty arena, which submission rules out:
                // say so rather than wait forever.
                dropPrefix(key)
                let entry = entries[head]!
                fail(
                    head,
                    ModelError.exceedsMemory(
                        needed: arena.rounded(entry.plan.length) * entry.rows * model.decoder.bytesPerPosition,
                        budget: arena.positions * model.decoder.bytesPerPosition,
                        what: "\(entry.request.imageKey) with \(entry.rows) beam(s)"),
                    completions: &completions)
            }
        }
    }

    private func admitInOrder() {
        var rows = runningRows
        var starting = prefixes.values.filter { !$0.isReady }.count
        var index = 0
        while index < waiting.count {
            let serial = waiting[index]
            let entry = entries[serial]!
            let key = entry.plan.prefixKey
            guard let prefix = prefixes[key] else {
                // The first request on this image and template head starts the prefix; it and the others on the
                // same prefix wait for it, while requests on other prefixes go on.
                if starting < configuration.visionBatch {
                    guard startPrefix(for: entry) else { return }
                    starting += 1
                }
                index += 1
                continue
            }
            guard prefix.isReady else {
                index += 1
                continue
            }
            guard running.isEmpty || rows + entry.rows <= configuration.maxRows else { return }
            guard let regions = allocateRows(serial) else { return }
            // Admitted: its first region continues the prefix.
            waiting.remove(at: index)
            arena.copy(rows: prefix.plan.sharedLength, from: prefix.region, to: [regions[0]])
            prefixes[key]!.lastUse = clock
            statistics.prefixHits += prefix.users > 0 ? 1 : 0
            prefixes[key]!.users += 1
            var admitted = entry
            admitted.regions = regions
            admitted.past = entry.plan.sharedLength
            admitted.lastVisualRow = prefix.lastVisualRow
            admitted.phase = .prefilling
            admitted.admission = nextOrder()
            entries[serial] = admitted
            running.append(serial)
            rows += entry.rows
        }
    }

    /// Starts computing `entry`'s prefix in a region of its own; false when memory does not allow it now.
    private func startPrefix(for entry: Entry) -> Bool {
        guard let region = allocate(entry.plan.sharedLength) else { return false }
        let key = entry.plan.prefixKey
        prefixes[key] = Prefix(
            key: key, plan: entry.plan, region: region, order: nextOrder(), lastUse: clock,
            imageSHA256: entry.request.imageSHA256, image: entry.request.image)
        return true
    }

    func nextOrder() -> Int {
        nextSerial += 1
        return nextSerial
    }

    /// Visual tokens for every prefix started and not yet given them: from the embedding cache when it has them,
    /// the rest in one pass of the vision encoder (each image once, however many prefixes it starts).
    func encodeImages() {
        let needing = prefixes.values.filter { $0.visual == nil && !$0.isReady }.sorted { $0.order < $1.order }
        guard !needing.isEmpty else { return }
        var tokens: [String: [Float]] = [:]
        var toEncode: [Prefix] = []
        let count = model.configuration.visualTokenCount * model.configuration.text.hiddenSize
        for prefix in needing where tokens[prefix.key.imageKey] == nil {
            if !toEncode.contains(where: { $0.key.imageKey == prefix.key.imageKey }) {
                if let key = cacheKey(prefix), let cached = embeddingCache!.tokens(for: key, count: count) {
                    tokens[prefix.key.imageKey] = cached
                    statistics.embeddingCacheHits += 1
                } else {
                    if cacheKey(prefix) != nil { statistics.embeddingCacheMisses += 1 }
                    toEncode.append(prefix)
                }
            }
        }
        var shareMilliseconds = 0.0
        if !toEncode.isEmpty {
            let began = ContinuousClock.now
            let encoded = model.visualTokens(toEncode.map(\.image))
            shareMilliseconds = (ContinuousClock.now - began).milliseconds / Double(toEncode.count)
            statistics.visionPasses += 1
            statistics.imagesEncoded += toEncode.count
            for (index, prefix) in toEncode.enumerated() {
                let rows = Array(encoded[(index * count)..<((index + 1) * count)])
                tokens[prefix.key.imageKey] = rows
                if let key = cacheKey(prefix) { embeddingCache!.store(rows, for: key) }
            }
        }
        let hidden = model.configuration.text.hiddenSize
        let encodedImages = Set(toEncode.map(\.key.imageKey))
        var charged = Set<String>()
        for prefix in needing {
            let rows = tokens[prefix.key.imageKey]!
            prefixes[prefix.key]!.visual = rows
            prefixes[prefix.key]!.lastVisualRow = Array(rows[(rows.count - hidden)...])
            // The pass's time goes to the first prefix on each image it encoded.
            if encodedImages.contains(prefix.key.imageKey) && charged.insert(prefix.key.imageKey).inserted {
                prefixes[prefix.key]!.vision = shareMilliseconds
            }
        }
    }

    /// The embedding-cache key of a prefix's image, when there is a cache and the image came with its digest.
    private func cacheKey(_ prefix: Prefix) -> String? {
        guard embeddingCache != nil, let sha = prefix.imageSHA256, let visionFingerprint else { return nil }
        return VisualEmbeddingCacheKey.make(imageSHA256: sha, fingerprint: visionFingerprint)
    }
}
