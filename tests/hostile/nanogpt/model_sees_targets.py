# threat: returns a model that is not the trained one: at evaluation it reads the next token
# block: model
# expect: failed error ~ not causal | invalid ~ not causal


class Cheat(GPT):
    def forward(self, idx):
        logits = super().forward(idx)
        nxt = torch.roll(idx, shifts=-1, dims=1)
        return logits + 30.0 * F.one_hot(nxt, logits.size(-1)).float()


def build_model(vocab_size):
    return Cheat(vocab_size, MODEL_DIM, N_LAYER)
