"""The two steps the peers benchmark times, the same for every model: a training
step (forward, loss, backward, optimizer step) and the logits of one image.

Ours predicts through ``artseg_mm.acceleration.optimize_for_inference``, as
``tools/infer.py`` and ``tools/test.py`` do; the peers run as their users run them.
"""
from typing import Optional

import torch

from .candidates import Candidate, default_adamw
from .timing import amp_precision, precision_autocast


class TrainStep:
    """forward + loss + backward + optimizer step (GradScaler with fp16 AMP)."""

    def __init__(self, cand: Candidate, model, args, device, precision: Optional[str] = None):
        self.cand, self.model, self.args, self.device = cand, model, args, device
        self.precision = precision or (amp_precision(device) if args.amp else 'fp32')
        self.model.train()
        self.opt = (cand.optimizer or default_adamw)(model)
        self.scaler = torch.amp.GradScaler('cuda') if self.precision == 'fp16' else None
        g = torch.Generator().manual_seed(0)
        s = args.train_size
        self.x = torch.randn(args.train_batch, 3, s, s, generator=g).to(device)
        self.y = torch.randint(0, cand.num_classes, (args.train_batch, s, s),
                               generator=g).to(device)

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        with precision_autocast(self.args, self.device, self.precision):
            loss = self.cand.loss(self.model, self.x, self.y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return loss


class InferStep:
    """Logits for one image at --infer-size, no autograd."""

    def __init__(self, cand: Candidate, model, args, device, precision: Optional[str] = None):
        self.cand, self.model, self.args, self.device = cand, model, args, device
        self.precision = precision or (amp_precision(device) if args.amp else 'fp32')
        if cand.kind == 'ours':  # as infer.py and test.py predict
            from artseg_mm.acceleration import optimize_for_inference
            self.model = optimize_for_inference(
                model, bf16=self.precision == 'bf16' and device.type == 'cpu')
        self.model.eval()
        s = args.infer_size
        self.x = torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(0)
                             ).to(device)

    def __call__(self):
        with torch.inference_mode(), precision_autocast(self.args, self.device, self.precision):
            out = self.cand.infer(self.model, self.x)
        assert out.shape[-2:] == self.x.shape[-2:], (
            f'{self.cand.name}: output {tuple(out.shape)} is not at input size')
        return out
