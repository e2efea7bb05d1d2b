"""Which decisions of a job's space mattered for its reward: importance (fANOVA through Optuna), a significance
test per decision, the reward per choice, and the rows a parallel-coordinates chart or learning-curve plot
needs; all over a bounded, deterministic sample of the job's succeeded trials. Torch-free; nothing prints.
"""

from nasapp.engine.analysis.report import DEFAULT_SAMPLE, MIN_TRIALS, DecisionReport, JobAnalysis, analyze_job

__all__ = ["DEFAULT_SAMPLE", "MIN_TRIALS", "DecisionReport", "JobAnalysis", "analyze_job"]
