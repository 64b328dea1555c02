"""The data stage: read every source (`sources/`), check and mix them (`mix`), describe the mix
(`dataset_card`), render Alpaca text and split it (`formatting`), and hash rows (`hashing`)."""
