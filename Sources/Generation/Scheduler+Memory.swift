// The scheduler's key/value memory: regions for prefixes and sequences, growing decoding sequences, evicting
// prefixes nobody waits for, and preempting the newest sequences when memory runs short.

import Models

extension Scheduler {
    /// A region of `positions`, evicting the least recently used prefixes no waiting request needs until one fits.
    func allocate(_ positions: Int) -> KVRegion? {
        while true {
            if let region = arena.allocate(positions: positions) { return region }
            guard evictUnreferencedPrefix() else { return nil }
        }
    }

    /// The prefixes waiting requests will read.
    var referencedPrefixes: Set<PrefixKey> {
        Set(waiting.map { entries[$0]!.plan.prefixKey })
    }

    /// Drops the least recently used finished prefix that no waiting request needs; false when there is none.
    func evictUnreferencedPrefix() -> Bool {
        let referenced = referencedPrefixes
        let candidate = prefixes.values.filter { $0.isReady && !referenced.contains($0.key) }.min {
            $0.lastUse < $1.lastUse
        }
        guard let candidate else { return false }
        dropPrefix(candidate.key)
        return true
    }

    func dropPrefix(_ key: PrefixKey) {
        guard let prefix = prefixes.removeValue(forKey: key) else { return }
        arena.release(prefix.region)
    }

    /// Regions for `serial`'s rows: its prompt and the first `decodeReserve` new tokens each.
    func allocateRows(_ serial: Int) -> [KVRegion]? {
        let entry = entries[serial]!
        let positions = entry.plan.length + min(entry.request.parameters.maxNewTokens, configuration.decodeReserve)
        var regions: [KVRegion] = []
        for _ in 0..<entry.rows {
            guard let region = allocate(positions) else {
                for region in regions { arena.release(region) }
                return nil
            }
            regions.append(region)
        }
        return regions
    }

    /// Grows every decoding sequence whose next position lies past its regions: in place, else moved to a larger
    /// region (one row, or all its rows at once), else after preempting the newest running sequences (itself, when
    /// it is the newest). A sequence that cannot grow even alone fails.
    func makeRoomForDecoding(_ completions: inout [Completion]) {
        for serial in running.sorted(by: { entries[$0]!.admission < entries[$1]!.admission }) {
            guard let entry = entries[serial], entry.phase == .decoding, running.contains(serial) else { continue }
            let needed = entry.past + 1
            let target = min(
                entry.plan.length + entry.request.parameters.maxNewTokens,
                max(needed, entry.regions[0].capacity + configuration.decodeReserve))
            for row in 0..<entry.rows {
                guard let current = entries[serial], current.phase == .decoding else { break }
                if current.regions[row].capacity >= needed { continue }
                guard grow(serial, row: row, to: target, completions: &completions) else { break }
            }
        }
    }

    /// Grows one row's region; false when the sequence was preempted or failed instead.
    private func grow(_ serial: Int, row: Int, to positions: Int, completions: inout [Completion]) -> Bool {
        while true {
            let region = entries[serial]!.regions[row]
            if let grown = arena.extend(region, to: positions) {
                entries[serial]!.regions[row] = grown
                return true
            }
            if let moved = allocate(positions) {
                arena.copy(rows: entries[serial]!.past, from: region, to: [moved])
                arena.release(region)
                entries[serial]!.regions[row] = moved
                return true
            }
            // All its rows moved at once may take each other's blocks (a beam's rows lie side by side).
            let entry = entries[serial]!
            if let moved = arena.relocate(entry.regions, rows: entry.past, to: positions) {
                entries[serial]!.regions = moved
                return true
            }
            // Memory is short: the newest sequence gives way, this one included; alone, it takes the memory of the
            // prefixes that waiting requests will compute again.
            let newest = running.max { entries[$0]!.admission < entries[$1]!.admission }!
            if newest != serial {
                preempt(newest)
            } else if running.count > 1 {
                preempt(serial)
                return false
            } else if !dropNewestPrefix() {
                let entry = entries[serial]!
                fail(
                    serial,
                    ModelError.exceedsMemory(
                        needed: positions * entry.rows * model.decoder.bytesPerPosition,
                        budget: arena.positions * model.decoder.bytesPerPosition,
                        what: "\(entry.request.imageKey) with \(entry.rows) beam(s) at \(positions) positions"),
                    completions: &completions)
                return false
            }
        }
    }

    /// Drops the newest prefix (finished or not); its waiting requests compute it again. False when none is left.
    func dropNewestPrefix() -> Bool {
        guard let newest = prefixes.values.max(by: { $0.order < $1.order }) else { return false }
        dropPrefix(newest.key)
        return true
    }

    /// Takes a running sequence back to the front of the queue: its memory is freed and its decoding starts over
    /// from the prompt when it is admitted again, with the same results.
    func preempt(_ serial: Int) {
        var entry = entries[serial]!
        for region in entry.regions { arena.release(region) }
        entry.regions = []
        entry.past = 0
        entry.pending = []
        entry.started = false
        entry.phase = .waiting
        entry.decoding = entry.request.parameters.decoding(
            vocabulary: model.configuration.text.vocabularySize, eos: model.configuration.text.eosTokenID,
            stream: entry.request.resolvedRandomStream)
        entries[serial] = entry
        promptLogits[serial] = nil
        running.removeAll { $0 == serial }
        waiting.insert(serial, at: 0)
        statistics.preemptions += 1
    }

    /// Ends a request with `error`, freeing what it holds.
    func fail(_ serial: Int, _ error: Error, completions: inout [Completion]) {
        guard let entry = entries.removeValue(forKey: serial) else { return }
        promptLogits[serial] = nil
        for region in entry.regions { arena.release(region) }
        running.removeAll { $0 == serial }
        waiting.removeAll { $0 == serial }
        completions.append(Completion(id: entry.id, result: .failure(error), promptLogits: nil))
    }
}
