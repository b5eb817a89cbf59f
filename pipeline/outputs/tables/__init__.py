"""One table builder per published dataset: plain results in, a pyarrow.Table of its schema out.

Each module builds one dataset (summary, histograms, trials, sensitivity, inputs, backtest);
partition values (as_of_date, scenario) are added by pipeline.outputs.io at publication.
"""
