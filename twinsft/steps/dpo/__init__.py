"""The DPO stage's steps, one thin wrapper over the library per module: load and format preference pairs, split
them, train with DPO from the SFT stage's artifact, evaluate SFT vs DPO on held-out pairs, merge and export."""

from twinsft.steps.dpo.evaluate_dpo import evaluate_dpo
from twinsft.steps.dpo.format_preferences import format_preferences
from twinsft.steps.dpo.load_preferences import load_preferences
from twinsft.steps.dpo.push_dpo_merged import push_dpo_merged
from twinsft.steps.dpo.split_preferences import split_preferences
from twinsft.steps.dpo.train_dpo import train_dpo

__all__ = ["evaluate_dpo", "format_preferences", "load_preferences", "push_dpo_merged", "split_preferences",
           "train_dpo"]
