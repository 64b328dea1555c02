"""Preference pairs for the DPO stage: `prompt`, `chosen`, `rejected` rows from the same kinds of sources as the
instruction data (`pairs` checks one source, `mix` mixes them, `card` describes the mix, `formatting` renders the
Alpaca prompt and ends both answers with EOS, `demo` makes the bundled demo pairs)."""
