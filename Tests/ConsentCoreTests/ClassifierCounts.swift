/// A classifier's hits and misses for one label, as the labelled-corpus tests count them.
struct ClassifierCounts {
    var truePositives = 0
    var falsePositives = 0
    var falseNegatives = 0

    /// Of what it flagged, how much was right; 1 when it flagged nothing.
    var precision: Double {
        truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives)
    }

    /// Of what it should have flagged, how much it did; 1 when there was nothing to flag.
    var recall: Double {
        truePositives + falseNegatives == 0 ? 1 : Double(truePositives) / Double(truePositives + falseNegatives)
    }
}
