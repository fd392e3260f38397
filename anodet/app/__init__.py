"""Everything Streamlit-aware: loaders, session and URL state, widgets, figures, the threshold control."""
