"""`ldm dashboard`: a static, offline site for a Health and Wellbeing Board, from published figures only.

The site is built from what `ldm export` publishes (disclosure control applied), never from the
marts themselves, so it can show nothing the export would suppress. Charts are Vega-Lite specs made
with altair, drawn in the browser by the Vega bundle that vl-convert ships, so the site needs no
network.
"""
