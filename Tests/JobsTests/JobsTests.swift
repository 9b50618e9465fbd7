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
        let message = TaskMessage(jobID: 7, taskIDs: [42, 43, 9])
        #expect(try TaskMessage.decode(message.encoded()) == message)
        #expect(String(decoding: message.encoded(), as: UTF8.self) == #"{"v":2,"job_id":7,"task_ids":[42,43,9]}"#)
    }

    @Test func versionOneMessagesAreReadAsOneTask() throws {
        let message = try TaskMessage.decode(Array(#"{"v":1,"task_id":42,"job_id":7}"#.utf8))
        #expect(message.taskIDs == [42] && message.jobID == 7)
    }

    @Test(arguments: [
        "", "[]", "{}", #"{"v":1}"#, #"{"v":1,"task_id":"x","job_id":1}"#, #"{"v":1,"task_id":-1,"job_id":1}"#,
        #"{"v":2,"job_id":1,"task_ids":[]}"#, #"{"v":2,"job_id":1,"task_ids":[1,1]}"#,
        #"{"v":2,"job_id":1,"task_ids":[1,"2"]}"#, #"{"v":2,"job_id":1,"task_ids":7}"#, #"{"v":2,"task_ids":[1]}"#,
        "not json",
    ])
    func malformedBodiesAreRefused(_ body: String) {
        #expect { try TaskMessage.decode(Array(body.utf8)) } throws: { error in
            if case .malformed = error as? TaskMessageError { return true }
            return false
        }
    }

    @Test func otherVersionsOversizedBodiesAndLongListsAreRefused() {
        #expect(throws: TaskMessageError.unknownVersion(3)) {
            try TaskMessage.decode(Array(#"{"v":3,"task_id":1,"job_id":1}"#.utf8))
        }
        #expect(throws: TaskMessageError.oversized(bytes: 5000, limit: 4096)) {
            try TaskMessage.decode([UInt8](repeating: 0x20, count: 5000))
        }
        let long = TaskMessage(jobID: 1, taskIDs: (1...65).map(Int64.init))
        #expect(throws: TaskMessageError.self) { try TaskMessage.decode(long.encoded()) }
    }

    @Test func anImagesTasksTravelTogetherInOrderAndInGroupsOfAtMost64() {
        var tasks = (1...70).map { TaskMessage.Task(taskID: Int64($0), jobID: 1, imageURI: "a.jpg") }
        tasks.insert(TaskMessage.Task(taskID: 100, jobID: 1, imageURI: "b.jpg"), at: 3)
        tasks.append(TaskMessage.Task(taskID: 101, jobID: 2, imageURI: "a.jpg"))
        let messages = TaskMessage.grouping(tasks)
        #expect(messages.map(\.taskIDs.count) == [64, 6, 1, 1])
        #expect(messages[0].taskIDs == (1...64).map(Int64.init) && messages[2].taskIDs == [100])
        #expect(messages[3].jobID == 2 && messages.allSatisfy { $0.encoded().count <= TaskMessage.maxBodySize })
    }
}
