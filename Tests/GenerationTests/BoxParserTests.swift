// Grounding outputs in every written form, and outputs with no box.

import Generation
import Imaging
import Testing

@Suite struct BoxParserTests {
    @Test(arguments: [
        "(0.12,0.34),(0.56,0.78)", "[0.12, 0.34, 0.56, 0.78]", "<box>(0.12,0.34),(0.56,0.78)</box>",
        "the dog is at [0.12,0.34,0.56,0.78].", "(0.56,0.78),(0.12,0.34)",
        // A number before the box (a list's numbering) is not taken into it.
        "1. [0.12, 0.34, 0.56, 0.78]", "1 (0.12,0.34),(0.56,0.78)",
    ])
    func oneBoxInAnyForm(_ text: String) {
        let boxes = BoxParser.boxes(in: text, width: 200, height: 100)
        #expect(boxes.count == 1)
        let box = boxes[0]
        #expect(box.x1 == 0.12 && box.y1 == 0.34 && box.x2 == 0.56 && box.y2 == 0.78)
        #expect(box.pixelX1 == 24 && box.pixelY1 == 34 && abs(box.pixelX2 - 112) < 1e-9 && abs(box.pixelY2 - 78) < 1e-9)
    }

    @Test func edgeValuesOneAndZero() {
        let boxes = BoxParser.boxes(in: "[0,0.5,1,1.0]", width: 640, height: 480)
        #expect(boxes.map { [$0.x1, $0.y1, $0.x2, $0.y2] } == [[0, 0.5, 1, 1]])
        #expect(boxes[0].pixelX2 == 640 && boxes[0].pixelY2 == 480)
    }

    @Test func severalBoxesInOrder() {
        let boxes = BoxParser.boxes(
            in: "<box>(0.1,0.2),(0.3,0.4)</box> and <box>(0.5,0.6),(0.7,0.8)</box>", width: 10, height: 10)
        #expect(boxes.map(\.x1) == [0.1, 0.5])
    }

    @Test func chatBoxesLoseThePaddingOfTheSquare() {
        // A 200 x 100 image padded to 200 x 200 (50 rows above and below): the model's y spans the square.
        let frame = ImageFrame.square(width: 200, height: 100)
        #expect(frame.top == 50 && frame.left == 0 && frame.frameHeight == 200)
        let boxes = BoxParser.boxes(in: "[0.1, 0.25, 0.5, 0.5] and [0.2, 0.1, 0.3, 0.2]", frame: frame)
        #expect(boxes.count == 2)
        #expect(boxes[0].pixelX1 == 20 && boxes[0].pixelY1 == 0 && boxes[0].pixelX2 == 100 && boxes[0].pixelY2 == 50)
        #expect(boxes[0].y1 == 0 && boxes[0].y2 == 0.5 && boxes[0].x2 == 0.5)
        // A box wholly inside the padding clamps to the image's edge.
        #expect(boxes[1].pixelY1 == 0 && boxes[1].pixelY2 == 0)
        // A tall image pads left and right.
        let tall = ImageFrame.square(width: 50, height: 101)
        #expect(tall.left == 25 && tall.top == 0 && tall.frameWidth == 101)
        let box = BoxParser.boxes(in: "(0.5,0),(1,1)", frame: tall)[0]
        #expect(box.pixelX1 == 25.5 && box.pixelX2 == 50 && box.pixelY2 == 101)
    }

    @Test(arguments: [
        "", "I cannot find it.", "0.1, 0.2, 0.3", "[12, 34, 56, 78]", "(0.1,0.2) and later (0.3,0.4)", "1000 dogs",
        "[0.1,0.2,0.3,1.5]", "[-0.05, 0.2, 0.3, 0.4]", "(0.1 0.2) (0.3 0.4)",
    ])
    func noBoxIsFoundWhereThereIsNone(_ text: String) {
        #expect(BoxParser.boxes(in: text, width: 100, height: 100).isEmpty)
    }
}
