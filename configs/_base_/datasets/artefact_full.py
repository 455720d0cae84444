# ARTeFACT with its 15 damage classes + Clean (16 classes; background ignored).
_base_ = ['./artefact_binary.py']
label_mode = 'full'
train_dataloader = dict(dataset=dict(label_mode=label_mode))
val_dataloader = dict(dataset=dict(label_mode=label_mode))
test_dataloader = val_dataloader
