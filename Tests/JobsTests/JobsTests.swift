// The task vocabulary shared by the CLI, the queue, the worker and the database.

import Jobs
import Testing

@Suite struct TaskKindTests {
    @Test func captionsTakeNoTextInputAndTheOthersDo() {
        #expect(TaskKind.allCases.filter { !$0.takesTextInput } == [.caption])
    }

    @Test func rawValuesAreTheStoredNames() {
        #expect(TaskKind.allCases.map(\.rawValue) == ["caption", "vqa", "ground", "chat"])
    }
}

@Suite struct TaskStatusTests {
    @Test func onlyQueuedAndRunningAreOpen() {
        #expect(TaskStatus.allCases.filter { !$0.isFinal } == [.queued, .running])
    }
}

@Suite struct TaskMessageTests {
    @Test func roundTrips() throws {
        let message = TaskMessage(taskID: 42, jobID: 7)
        #expect(try TaskMessage.decode(message.encoded()) == message)
        #expect(String(decoding: message.encoded(), as: UTF8.self) == #"{"v":1,"task_id":42,"job_id":7}"#)
    }

    @Test(arguments: [
        "", "[]", "{}", #"{"v":1}"#, #"{"v":1,"task_id":"x","job_id":1}"#, #"{"v":1,"task_id":-1,"job_id":1}"#,
        "not json",
    ])
    func malformedBodiesAreRefused(_ body: String) {
        #expect { try TaskMessage.decode(Array(body.utf8)) } throws: { error in
            if case .malformed = error as? TaskMessageError { return true }
            return false
        }
    }

    @Test func otherVersionsAndOversizedBodiesAreRefused() {
        #expect(throws: TaskMessageError.unknownVersion(2)) {
            try TaskMessage.decode(Array(#"{"v":2,"task_id":1,"job_id":1}"#.utf8))
        }
        #expect(throws: TaskMessageError.oversized(bytes: 5000, limit: 4096)) {
            try TaskMessage.decode([UInt8](repeating: 0x20, count: 5000))
        }
    }
}
