// One decoder pass of the scheduler: every decoding row, then prompt chunks (admitted requests' own positions, then
// prefixes, paced over the decoding steps until a row frees when every row is taken) while the token budget lasts;
// afterwards each request's logits go to its decoding rule.

import Foundation
import Models

/// What one decoder pass runs and whom each segment belongs to.
struct StepBatch {
    enum Owner {
        case prefix(PrefixKey)
        case prompt(Int)
        case decode(Int)
    }

    var inputs: [Float] = []
    var segments: [DecoderSegment] = []
    var owners: [Owner] = []
    var decodeRows = 0
}

extension Scheduler {
    /// One row per decoding sequence and beam: the token chosen last step.
    func planDecoding(_ batch: inout StepBatch) {
        var tokens: [Int] = []
        for serial in running {
            let entry = entries[serial]!
            guard entry.phase == .decoding else { continue }
            for row in 0..<entry.rows {
                batch.segments.append(
                    DecoderSegment(region: entry.regions[row], past: entry.past, count: 1, wantsLogits: true))
                tokens.append(entry.pending[row])
            }
            batch.owners.append(.decode(serial))
            batch.decodeRows += entry.rows
        }
        batch.inputs = model.decoder.embed(tokens)
    }

    /// Prompt chunks while they fit beside the decoding rows in the step's budget (one chunk at least when nothing
    /// decodes): admitted requests' own positions first, which their rows wait for, then prefixes, each in the order
    /// it came. While every row is taken, prefixes are paced over the decoding steps until a row frees
    /// (`pacedPositions`).
    func planPrefill(_ batch: inout StepBatch) {
        enum Work {
            case prefix(PrefixKey)
            case prompt(Int)
        }
        let prompts: [Work] = running.filter { entries[$0]!.phase == .prefilling }
            .sorted { entries[$0]!.admission < entries[$1]!.admission }.map { .prompt($0) }
        let ready = prefixes.values.filter { !$0.isReady && $0.visual != nil }.sorted { $0.order < $1.order }
        let work = prompts + ready.map { .prefix($0.key) }
        var budget = configuration.tokenBudget - batch.decodeRows
        var prefixBudget = Int.max
        if batch.decodeRows > 0 && runningRows >= configuration.maxRows {
            prefixBudget = pacedPositions(ready.reduce(0) { $0 + $1.plan.sharedLength - $1.computed })
        }
        let hidden = model.configuration.text.hiddenSize
        let embed = { (ids: [Int]) in self.model.decoder.embed(ids) }
        for item in work {
            switch item {
            case let .prefix(key):
                let prefix = prefixes[key]!
                let visual = prefix.visual!
                var done = prefix.computed
                while done < prefix.plan.sharedLength {
                    let chunk = PromptPlan.chunk(
                        after: done, from: 0, to: prefix.plan.sharedLength, size: configuration.prefillChunk)
                    guard chunk.count <= min(budget, prefixBudget) || batch.segments.isEmpty else { return }
                    batch.inputs += prefix.plan.embeddings(chunk, hidden: hidden, embed: embed) {
                        visual[($0.lowerBound * hidden)..<($0.upperBound * hidden)]
                    }
                    batch.segments.append(
                        DecoderSegment(region: prefix.region, past: done, count: chunk.count, wantsLogits: false))
                    batch.owners.append(.prefix(key))
                    budget -= chunk.count
                    prefixBudget -= chunk.count
                    done = chunk.upperBound
                }
            case let .prompt(serial):
                let entry = entries[serial]!
                let plan = entry.plan
                // Only the last visual row can fall in a request's own positions (a prompt ending with the image).
                let last = entry.lastVisualRow
                var done = entry.past
                while done < plan.length {
                    let chunk = PromptPlan.chunk(
                        after: done, from: plan.sharedLength, to: plan.length, size: configuration.prefillChunk)
                    guard chunk.count <= budget || batch.segments.isEmpty else { return }
                    batch.inputs += plan.embeddings(chunk, hidden: hidden, embed: embed) { range in
                        precondition(range.upperBound == plan.visualCount && range.count == 1, "own visual rows")
                        return last[...]
                    }
                    batch.segments.append(
                        DecoderSegment(
                            region: entry.regions[0], past: done, count: chunk.count,
                            wantsLogits: chunk.upperBound == plan.length))
                    batch.owners.append(.prompt(serial))
                    budget -= chunk.count
                    done = chunk.upperBound
                }
            }
        }
    }

    /// Prefix positions to run beside this step's decoding rows while every row is taken, of `left` ready to
    /// compute: spread evenly over the decoding steps until the first row frees (at most, by the running sequences'
    /// new-token limits), and at least one chunk, so that the next request's prefix is ready when a row is. A decoding
    /// step reads every weight once whatever its rows, so positions beside it can cost less than in a step of their
    /// own (little less with this CPU engine, whose products overlap little of that read with their arithmetic; on a
    /// GPU, up to a few hundred positions ride almost free).
    func pacedPositions(_ left: Int) -> Int {
        var steps = Int.max
        for serial in running {
            let entry = entries[serial]!
            guard entry.phase == .decoding else { continue }
            let generated = entry.past - entry.plan.length + 1
            steps = min(steps, max(1, entry.request.parameters.maxNewTokens - generated))
        }
        guard steps < Int.max else { return Int.max }
        return max(configuration.prefillChunk, (left + steps - 1) / steps)
    }

    /// Hands the pass's results out: progress of prefixes and prompts, logits to decoding rules, and each owner its
    /// share of the pass's time by rows.
    func apply(_ batch: StepBatch, logits: [Float], milliseconds: Double, completions: inout [Completion]) {
        let vocabulary = model.configuration.text.vocabularySize
        let rows = Double(batch.segments.reduce(0) { $0 + $1.count })
        let share = { (count: Int) in milliseconds * Double(count) / rows }
        var segment = 0, logitRow = 0
        for owner in batch.owners {
            switch owner {
            case let .prefix(key):
                let count = batch.segments[segment].count
                segment += 1
                prefixes[key]!.computed += count
                prefixes[key]!.prefill += share(count)
                if prefixes[key]!.isReady { finishPrefix(key) }
            case let .prompt(serial):
                let current = batch.segments[segment]
                segment += 1
                entries[serial]!.past += current.count
                entries[serial]!.prefill += share(current.count)
                guard current.wantsLogits else { continue }
                let row = logits[(logitRow * vocabulary)..<((logitRow + 1) * vocabulary)]
                logitRow += 1
                advance(serial, row, rows: batch.segments.count, completions: &completions)
            case let .decode(serial):
                let count = entries[serial]!.rows
                segment += count
                entries[serial]!.past += 1
                entries[serial]!.decode += share(count)
                let rows = logits[(logitRow * vocabulary)..<((logitRow + count) * vocabulary)]
                logitRow += count
                advance(serial, rows, rows: batch.segments.count, completions: &completions)
            }
        }
    }

    /// A prefix is ready: its vision and prefill time go to the requests that waited for it.
    private func finishPrefix(_ key: PrefixKey) {
        statistics.prefixesComputed += 1
        prefixes[key]!.visual = nil
        let prefix = prefixes[key]!
        let waitingOnIt = waiting.filter { entries[$0]!.plan.prefixKey == key }
        for serial in waitingOnIt {
            entries[serial]!.vision += prefix.vision / Double(waitingOnIt.count)
            entries[serial]!.prefill += prefix.prefill / Double(waitingOnIt.count)
        }
    }

    /// Gives `logits` to the request's decoding rule and acts on what it says: the next tokens (after moving beams'
    /// keys and values as their hypotheses moved), or the end.
    private func advance(_ serial: Int, _ logits: ArraySlice<Float>, rows: Int, completions: inout [Completion]) {
        var entry = entries[serial]!
        var promptLogits: [Float]?
        if !entry.started && entry.recordsPromptLogits { promptLogits = Array(logits) }
        entry.lastStepRows = rows
        let step = entry.decoding.advance(logits)
        switch step {
        case let .finished(sequence):
            entries[serial] = entry
            complete(serial, sequence, promptLogits: promptLogits, completions: &completions)
        case let .next(tokens, sources):
            if entry.rows > 1 {
                if !entry.started {
                    // The prompt was computed once, in the first beam's region: every beam starts from it.
                    arena.copy(rows: entry.past, from: entry.regions[0], to: Array(entry.regions.dropFirst()))
                } else {
                    arena.reorder(entry.regions, sources: sources, rows: entry.past)
                }
            }
            entry.pending = tokens
            entry.started = true
            entry.phase = .decoding
            entries[serial] = entry
            if let promptLogits { self.promptLogits[serial] = promptLogits }
        }
    }

    private func complete(
        _ serial: Int, _ sequence: GeneratedSequence, promptLogits: [Float]?, completions: inout [Completion]
    ) {
        let entry = entries.removeValue(forKey: serial)!
        for region in entry.regions { arena.release(region) }
        running.removeAll { $0 == serial }
        let logits = promptLogits ?? self.promptLogits.removeValue(forKey: serial)
        let text = model.tokenizer.decode(sequence.tokens).trimmingCharacters(in: .whitespacesAndNewlines)
        let boxes = entry.request.task == .ground ? BoxParser.boxes(in: text, frame: entry.request.image.frame) : []
        let timings = [
            "vision": entry.vision, "prefill": entry.prefill, "decode": entry.decode,
            "generate": entry.prefill + entry.decode,
        ]
        let result = InferenceResult(
            text: text, tokens: sequence.tokens,
            logProbability: sequence.logProbability.isFinite ? Double(sequence.logProbability) : nil,
            boxes: boxes,
            prompt: entry.plan.text,
            promptTokenCount: entry.plan.length, timings: timings, batchSize: entry.lastStepRows,
            promptPositions: entry.plan.length, decodeSteps: max(0, sequence.tokens.count - 1))
        completions.append(Completion(id: entry.id, result: .success(result), promptLogits: logits))
    }
}
