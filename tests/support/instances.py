"""Small synthetic CT instances for forwarding tests and the forwarding benchmark.

The forwarder never looks inside an instance (it streams the spool file), so what matters is
a well-formed Part-10 file with its own SOP Instance UID that real receivers (Orthanc,
DCMTK's storescp) store; the pixel data is a gradient plus the index, so files differ.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_instance(index: int, size: int = 16, study_uid: str | None = None, series_uid: str | None = None,
                sop_class: str = CTImageStorage, transfer_syntax: str = ExplicitVRLittleEndian,
                uid_seed: str | None = None) -> Dataset:
    """One CT slice of ``size`` x ``size`` 16-bit pixels.

    UIDs are new at every call, unless ``uid_seed`` is given: then the same (seed, index,
    size) always gives the same UIDs, as re-reading the same source must.
    """

    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, kind, str(index), str(size)]) if uid_seed else generate_uid()

    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid("instance")
    ds.StudyInstanceUID = study_uid or uid("study")
    ds.SeriesInstanceUID = series_uid or uid("series")
    ds.FrameOfReferenceUID = uid("frame_of_reference")
    ds.PatientName = "Test^Forward"
    ds.PatientID = "FWD0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = "20240101"
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1.0
    ds.KVP = 120
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    pixels = (np.add.outer(np.arange(size), np.arange(size)) + index).astype("<u2")
    ds.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return ds
