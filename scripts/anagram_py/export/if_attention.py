"""Phase 2 of the IF export: the attention processor traced into the bundle's UNets.

CapturingAddedKVProcessor computes what diffusers' AttnAddedKVProcessor computes and can record
a layer's cross-attention probabilities; the stage I UNet's forward_with_attention returns them
as the anti-segregation maps. Also used by scripts/golden/golden_mtl.py for the eager maps.
"""
import torch

from .if_common import example_inputs


class CaptureState:
    """Shared by all processors of one UNet: the capture switch and the recorded maps."""

    def __init__(self):
        self.active = False
        self.maps = []

    def start(self):
        self.active = True
        self.maps = []

    def stop(self):
        maps, self.maps, self.active = self.maps, [], False
        return maps


class CapturingAddedKVProcessor:
    """diffusers' AttnAddedKVProcessor math, plus optional capture of attention probabilities.

    IF's attention layers attend from the image positions to [projected text tokens, then
    the image positions themselves]. When `capture` is set for this layer and the shared
    state is active, the probabilities of the text-key columns, summed over heads, are
    appended to the state as (B, Q, T). Nothing is detached: the maps carry gradients.
    Casts use type_as so that no dtype other than float32 (the softmax upcast) is named.
    """

    def __init__(self, name, state, capture):
        self.name = name
        self.state = state
        self.capture = capture

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 scale=1.0):
        from diffusers.utils import USE_PEFT_BACKEND

        args = () if USE_PEFT_BACKEND else (scale,)
        residual = hidden_states
        hidden_states = hidden_states.view(hidden_states.shape[0], hidden_states.shape[1], -1)
        hidden_states = hidden_states.transpose(1, 2)
        batch_size, sequence_length, _ = hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)

        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        text_tokens = encoder_hidden_states.shape[1]

        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states, *args))
        text_key = attn.head_to_batch_dim(attn.add_k_proj(encoder_hidden_states, *args))
        text_value = attn.head_to_batch_dim(attn.add_v_proj(encoder_hidden_states, *args))
        if attn.only_cross_attention:
            key, value = text_key, text_value
        else:
            key = torch.cat([text_key, attn.head_to_batch_dim(attn.to_k(hidden_states, *args))], 1)
            value = torch.cat([text_value, attn.head_to_batch_dim(attn.to_v(hidden_states, *args))], 1)

        probs = self._attention_probs(attn, query, key, attention_mask)
        if self.capture and self.state.active:
            text_probs = probs[:, :, :text_tokens]
            text_probs = text_probs.reshape(-1, attn.heads, text_probs.shape[1], text_probs.shape[2])
            self.state.maps.append(text_probs.sum(1))

        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[0](hidden_states, *args)
        hidden_states = attn.to_out[1](hidden_states)
        hidden_states = hidden_states.transpose(-1, -2).reshape(residual.shape)
        return hidden_states + residual

    @staticmethod
    def _attention_probs(attn, query, key, attention_mask):
        """Attention.get_attention_scores without device/dtype constants in the trace."""
        q, k = query, key
        if attn.upcast_attention:
            q, k = q.float(), k.float()
        if attention_mask is None:
            # beta=0: the input's values are ignored; zeros of a broadcastable shape are
            # made from q so that the trace names no device.
            base = torch.zeros_like(q[:, :, :1])
            beta = 0
        else:
            base = attention_mask
            beta = 1
        scores = torch.baddbmm(base, q, k.transpose(-1, -2), beta=beta, alpha=attn.scale)
        if attn.upcast_softmax:
            scores = scores.float()
        return scores.softmax(dim=-1).type_as(query)


class ProbeProcessor:
    """Records (layer name, query count) in call order, then runs diffusers' processor."""

    def __init__(self, name, inner, calls):
        self.name, self.inner, self.calls = name, inner, calls

    def __call__(self, attn, hidden_states, *args, **kwargs):
        queries = hidden_states.shape[2] * hidden_states.shape[3] if hidden_states.ndim == 4 \
            else hidden_states.shape[1]
        self.calls.append((self.name, int(queries)))
        return self.inner(attn, hidden_states, *args, **kwargs)


def find_attention_layers(unet, resolution, text_dim):
    """Names of attention layers whose query grid is resolution x resolution, in call order."""
    from diffusers.models.attention_processor import (AttnAddedKVProcessor,
                                                      AttnAddedKVProcessor2_0)
    originals = unet.attn_processors
    for name, proc in originals.items():
        if not isinstance(proc, (AttnAddedKVProcessor, AttnAddedKVProcessor2_0)):
            raise SystemExit(f"error: {name} uses {type(proc).__name__}; an IF UNet uses "
                             "added-KV attention (AttnAddedKVProcessor) everywhere")
    calls = []
    unet.set_attn_processor({k: ProbeProcessor(k[:-len(".processor")], AttnAddedKVProcessor(), calls)
                             for k in originals})
    sample, t, states = example_inputs(unet, text_dim, 1, unet.dtype, unet.device)
    with torch.no_grad():
        unet(sample, t, encoder_hidden_states=states)
    unet.set_attn_processor(originals)
    layers = [name for name, queries in calls if queries == resolution * resolution]
    if not layers:
        found = sorted({q for _, q in calls})
        raise SystemExit(f"error: no attention layer has a {resolution}x{resolution} query grid "
                         f"(query counts: {found})")
    if len(set(layers)) != len(layers):
        raise SystemExit("error: an attention layer ran twice in one forward pass")
    return layers, calls


def install_capture(unet, layers):
    """Give every attention layer a CapturingAddedKVProcessor (capturing the named `layers`)
    sharing one CaptureState, which is returned."""
    state = CaptureState()
    procs = {}
    for key in unet.attn_processors:
        name = key[:-len(".processor")]
        procs[key] = CapturingAddedKVProcessor(name, state, name in layers)
    unet.set_attn_processor(procs)
    return state


def check_added_kv(unet, what):
    """SystemExit unless every attention layer of UNET uses added-KV attention, as IF's do."""
    from diffusers.models.attention_processor import (AttnAddedKVProcessor,
                                                      AttnAddedKVProcessor2_0)
    for name, proc in unet.attn_processors.items():
        if not isinstance(proc, (AttnAddedKVProcessor, AttnAddedKVProcessor2_0,
                                 CapturingAddedKVProcessor)):
            raise SystemExit(f"error: {what} {name} uses {type(proc).__name__}; an IF UNet "
                             "uses added-KV attention (AttnAddedKVProcessor) everywhere")
