"""Small builders shared by tests: synthetic but valid DICOM instances."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from gateway.iods import CT_IMAGE_STORAGE


def ct_instance(index: int = 0, rows: int = 16, columns: int = 16, study: str | None = None,
                series: str | None = None) -> Dataset:
    """A small CT Image instance with its meta header, distinct per ``index``."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["legacy-gateway-test", str(index), str(rows)])
    ds.StudyInstanceUID = study or generate_uid(entropy_srcs=["study", str(index)])
    ds.SeriesInstanceUID = series or generate_uid(entropy_srcs=["series", str(index)])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["for", str(index)])
    ds.Modality = "CT"
    ds.PatientName = "TEST^SYNTHETIC"
    ds.PatientID = "SYN0001"
    ds.InstanceNumber = index + 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, float(index)]
    ds.PixelData = (np.arange(rows * columns, dtype=np.int16) + index).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds
